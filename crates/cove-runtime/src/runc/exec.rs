//! `exec`: run a process in a running container with `<runtime> exec`, collecting its output.

use tracing::instrument;

use super::{Flavor, Runc};
use crate::{ExecOutput, RuntimeError};

impl Runc {
    #[instrument(skip(self, env), fields(pod = %id, runtime = self.flavor.name()))]
    pub(super) async fn exec_inner(
        &self,
        id: &str,
        args: &[String],
        env: &[String],
        cwd: Option<&str>,
    ) -> Result<ExecOutput, RuntimeError> {
        if args.is_empty() {
            return Err(RuntimeError::InvalidConfig(
                "exec args must not be empty".into(),
            ));
        }
        let mut cmd: Vec<String> = vec!["exec".into()];
        for e in env {
            cmd.extend(["--env".into(), e.clone()]);
        }
        if let Some(cwd) = cwd {
            cmd.extend(["--cwd".into(), cwd.to_string()]);
        }
        // runc runs the process as the spec's user; runsc as root unless told.
        if self.flavor == Flavor::Runsc {
            cmd.extend(self.spec_user_flags(id).await?);
        }
        cmd.push(id.to_string());
        cmd.extend(args.iter().cloned());
        let out = self.call_owned(&cmd).await?;
        // The runtime exits with the process's own code; only a logged error means it failed.
        if out.error.is_some() {
            if out.not_found() {
                return Err(RuntimeError::NotFound(id.to_string()));
            }
            return Err(self.err("exec", id, out.message()));
        }
        Ok(ExecOutput {
            exit_code: out.output.status.code().unwrap_or(-1),
            stdout: out.output.stdout,
            stderr: out.output.stderr,
        })
    }

    /// `--user uid:gid` and `--additional-gids` of the container's own process, from the
    /// `config.json` of its bundle.
    async fn spec_user_flags(&self, id: &str) -> Result<Vec<String>, RuntimeError> {
        let Some(state) = self.state(id).await? else {
            return Err(RuntimeError::NotFound(id.to_string()));
        };
        let path = state.bundle.join("config.json");
        let text = std::fs::read(&path)
            .map_err(|e| RuntimeError::io(format!("reading {}", path.display()), e))?;
        let spec: oci_spec::runtime::Spec = serde_json::from_slice(&text).map_err(|e| {
            RuntimeError::io(
                format!("parsing {}", path.display()),
                std::io::Error::other(e),
            )
        })?;
        let Some(user) = spec.process().as_ref().map(|p| p.user()) else {
            return Ok(Vec::new());
        };
        let mut flags = vec![
            "--user".to_string(),
            format!("{}:{}", user.uid(), user.gid()),
        ];
        for g in user.additional_gids().iter().flatten() {
            flags.extend(["--additional-gids".to_string(), g.to_string()]);
        }
        Ok(flags)
    }
}
