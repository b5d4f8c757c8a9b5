//! `exec`: run a process in a running container with `<runtime> exec`, collecting its output.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::runtime::{Capability, Process};
use tracing::instrument;

use super::{Flavor, Runc};
use crate::{ExecOutput, RuntimeError};

static PROCESS_FILES: AtomicU64 = AtomicU64::new(0);

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
        let mut process_file = None;
        let mut cmd: Vec<String> = vec!["exec".into()];
        match self.flavor {
            Flavor::Runc => {
                // runc starts from the container's own process (user, capabilities, env).
                for e in env {
                    cmd.extend(["--env".into(), e.clone()]);
                }
                if let Some(cwd) = cwd {
                    cmd.extend(["--cwd".into(), cwd.to_string()]);
                }
                cmd.push(id.to_string());
                cmd.extend(args.iter().cloned());
            }
            Flavor::Runsc => {
                // runsc's flags would run the process as root; the whole process is given instead.
                let path = self.write_process_file(id, args, env, cwd).await?;
                cmd.extend([
                    "--process".into(),
                    path.display().to_string(),
                    id.to_string(),
                ]);
                process_file = Some(path);
            }
        }
        let out = self.call_owned(&cmd).await;
        if let Some(path) = process_file {
            let _ = std::fs::remove_file(path);
        }
        let out = out?;
        // The runtime exits with the process's own code; only a logged error means it failed.
        if out.error.is_some() {
            // Before `not_found`: "executable file not found" is about the command.
            if let Some(m) = bad_command(&out.message(), &args[0], cwd) {
                return Err(RuntimeError::BadCommand(m));
            }
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

    /// Writes the process to exec as an OCI `process.json` in the runtime root, built from the
    /// container's own process (see [`exec_process`]).
    async fn write_process_file(
        &self,
        id: &str,
        args: &[String],
        env: &[String],
        cwd: Option<&str>,
    ) -> Result<PathBuf, RuntimeError> {
        let Some(state) = self.state(id).await? else {
            return Err(RuntimeError::NotFound(id.to_string()));
        };
        let spec = read_spec(&state.bundle.join("config.json"))?;
        let process = spec.process().clone().unwrap_or_default();
        let process = exec_process(process, args, env, cwd);
        let n = PROCESS_FILES.fetch_add(1, Ordering::Relaxed);
        // Not `*.state`, so runsc never takes it for a container.
        let path = self
            .root
            .join(format!(".exec-{}-{n}.json", std::process::id()));
        let json = serde_json::to_vec(&process).map_err(|e| {
            RuntimeError::io("serializing the exec process", std::io::Error::other(e))
        })?;
        std::fs::write(&path, json)
            .map_err(|e| RuntimeError::io(format!("writing {}", path.display()), e))?;
        Ok(path)
    }
}

/// The one-line error for an exec that failed because of its command or working directory,
/// from the runtime's message (runc: `exec: "x": executable file not found in $PATH`,
/// `exec: "/x": stat /x: no such file or directory`, `chdir to cwd ("/x") ...`).
fn bad_command(message: &str, program: &str, cwd: Option<&str>) -> Option<String> {
    let m = message.to_ascii_lowercase();
    if m.contains("chdir to cwd") {
        let dir = cwd.unwrap_or("the container's working directory");
        return Some(format!(
            "cannot exec {program:?}: working directory {dir:?} does not exist in the container"
        ));
    }
    if m.contains("executable file not found") {
        return Some(format!(
            "cannot exec {program:?}: executable file not found in the container's $PATH"
        ));
    }
    let about_program = m.contains("exec: \"") || m.contains("failed to find");
    if about_program && m.contains("no such file or directory") {
        return Some(format!(
            "cannot exec {program:?}: no such file in the container"
        ));
    }
    if about_program && m.contains("permission denied") {
        return Some(format!(
            "cannot exec {program:?}: permission denied (not an executable file)"
        ));
    }
    None
}

fn read_spec(path: &Path) -> Result<oci_spec::runtime::Spec, RuntimeError> {
    let text = std::fs::read(path)
        .map_err(|e| RuntimeError::io(format!("reading {}", path.display()), e))?;
    serde_json::from_slice(&text).map_err(|e| {
        RuntimeError::io(
            format!("parsing {}", path.display()),
            std::io::Error::other(e),
        )
    })
}

/// The container's process turned into the one to exec: `args`, its env with `env` (`K=V`)
/// added or overriding, `cwd` if given, no terminal. Same user; same capabilities for root, but
/// none effective for another user, as after the execve(2) runc does (gVisor would otherwise
/// hand the spec's capabilities to a non-root process).
fn exec_process(mut p: Process, args: &[String], env: &[String], cwd: Option<&str>) -> Process {
    let mut merged: Vec<String> = p.env().clone().unwrap_or_default();
    for kv in env {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        merged.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        merged.push(kv.clone());
    }
    p.set_env(Some(merged));
    p.set_args(Some(args.to_vec()));
    if let Some(cwd) = cwd {
        p.set_cwd(cwd.into());
    }
    p.set_terminal(Some(false));
    p.set_console_size(None);
    if p.user().uid() != 0 {
        if let Some(caps) = p.capabilities().clone() {
            let none: HashSet<Capability> = HashSet::new();
            let mut caps = caps;
            caps.set_effective(Some(none.clone()))
                .set_permitted(Some(none.clone()))
                .set_inheritable(Some(none.clone()))
                .set_ambient(Some(none));
            p.set_capabilities(Some(caps));
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxCapabilitiesBuilder, ProcessBuilder, UserBuilder};

    fn process(uid: u32) -> Process {
        let caps: HashSet<Capability> = [Capability::Chown, Capability::Kill].into();
        ProcessBuilder::default()
            .args(vec!["httpd".to_string()])
            .env(vec!["PATH=/bin".to_string(), "A=1".to_string()])
            .cwd("/www")
            .user(UserBuilder::default().uid(uid).gid(uid).build().unwrap())
            .capabilities(
                LinuxCapabilitiesBuilder::default()
                    .bounding(caps.clone())
                    .effective(caps.clone())
                    .permitted(caps)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    #[test]
    fn exec_process_keeps_the_user_and_merges_env() {
        let p = exec_process(
            process(0),
            &["ls".into(), "/".into()],
            &["A=2".into(), "B=3".into()],
            Some("/tmp"),
        );
        assert_eq!(
            p.args().as_deref(),
            Some(&["ls".to_string(), "/".to_string()][..])
        );
        assert_eq!(
            p.env().as_deref(),
            Some(&["PATH=/bin".to_string(), "A=2".into(), "B=3".into()][..])
        );
        assert_eq!(p.cwd().to_str(), Some("/tmp"));
        assert_eq!(p.user().uid(), 0);
        let caps = p.capabilities().clone().unwrap();
        assert!(caps
            .effective()
            .as_ref()
            .unwrap()
            .contains(&Capability::Chown));
        // Without cwd, the container's.
        assert_eq!(
            exec_process(process(0), &["x".into()], &[], None)
                .cwd()
                .to_str(),
            Some("/www")
        );
    }

    #[test]
    fn a_missing_command_is_named() {
        let runc = r#"exec failed: unable to start container process: exec: "nope": executable file not found in $PATH"#;
        assert_eq!(
            bad_command(runc, "nope", None).as_deref(),
            Some("cannot exec \"nope\": executable file not found in the container's $PATH")
        );
        let abs = r#"exec failed: unable to start container process: exec: "/x": stat /x: no such file or directory"#;
        assert!(bad_command(abs, "/x", None)
            .unwrap()
            .contains("no such file"));
        assert!(bad_command("container \"c\" does not exist", "ls", None).is_none());
    }

    #[test]
    fn a_non_root_exec_has_no_effective_capabilities() {
        let p = exec_process(process(1000), &["id".into()], &[], None);
        let caps = p.capabilities().clone().unwrap();
        assert!(caps.effective().as_ref().unwrap().is_empty());
        assert!(caps.permitted().as_ref().unwrap().is_empty());
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::Kill));
        assert_eq!(p.user().uid(), 1000);
    }
}
