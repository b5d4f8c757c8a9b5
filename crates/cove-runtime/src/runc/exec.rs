//! `exec`: run a process in a running container with `runc exec`, collecting its output.

use tracing::instrument;

use super::{runc_err, Runc};
use crate::{ExecOutput, RuntimeError};

impl Runc {
    #[instrument(skip(self, env), fields(pod = %id))]
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
        let mut cmd: Vec<&str> = vec!["exec"];
        for e in env {
            cmd.extend(["--env", e.as_str()]);
        }
        if let Some(cwd) = cwd {
            cmd.extend(["--cwd", cwd]);
        }
        cmd.push(id);
        cmd.extend(args.iter().map(String::as_str));
        let out = self.call(&cmd).await?;
        // runc exits with the process's own code; only a logged error means runc itself failed.
        if out.error.is_some() {
            if out.not_found() {
                return Err(RuntimeError::NotFound(id.to_string()));
            }
            return Err(runc_err("exec", id, out.message()));
        }
        Ok(ExecOutput {
            exit_code: out.output.status.code().unwrap_or(-1),
            stdout: out.output.stdout,
            stderr: out.output.stderr,
        })
    }
}
