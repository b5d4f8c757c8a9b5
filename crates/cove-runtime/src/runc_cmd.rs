//! Invoking an OCI runtime CLI of the runc family (`runc`, gVisor's `runsc`): one helper that runs
//! `<runtime> --root R --log <tmp> --log-format json <global flags> ...`, and reading the runtime's
//! own error message from its JSON log (so it never mixes with container output).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

use crate::RuntimeError;

/// The result of one runc invocation.
pub(crate) struct RuncOutput {
    pub output: Output,
    /// runc's last error-level log message, if it logged one.
    pub error: Option<String>,
}

impl RuncOutput {
    pub fn success(&self) -> bool {
        self.output.status.success()
    }

    /// The best description of why runc failed.
    pub fn message(&self) -> String {
        if let Some(e) = &self.error {
            return e.clone();
        }
        let stderr = String::from_utf8_lossy(&self.output.stderr)
            .trim()
            .to_string();
        if stderr.is_empty() {
            format!("exited with {}", self.output.status)
        } else {
            stderr
        }
    }

    /// True if runc said the container does not exist.
    pub fn not_found(&self) -> bool {
        let m = self.message();
        m.contains("does not exist") || m.contains("not found") || m.contains("not exist")
    }
}

#[derive(Deserialize)]
struct LogLine {
    #[serde(default)]
    level: String,
    #[serde(default)]
    msg: String,
}

/// The last error-level (or, failing that, last) `msg` in a runtime's JSON log file. runc writes
/// one object per line; runsc writes them back to back with no newline, so the file is read as a
/// stream of JSON values (each line separately, skipping lines that are not JSON).
pub(crate) fn last_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let lines: Vec<LogLine> = text
        .lines()
        .flat_map(|l| {
            serde_json::Deserializer::from_str(l)
                .into_iter::<LogLine>()
                .map_while(Result::ok)
        })
        .filter(|l| !l.msg.is_empty())
        .collect();
    lines
        .iter()
        .rev()
        .find(|l| l.level == "error" || l.level == "fatal")
        .or(lines.last())
        .map(|l| l.msg.clone())
}

static CALLS: AtomicU64 = AtomicU64::new(0);

/// Runs `<runtime> --root <root> --log <unique file> --log-format json <global> <args>` and collects
/// its output. The log file lives in `root` as a plain file (runc only treats directories as
/// containers, runsc only `*.state` files).
pub(crate) async fn run<I, S>(
    runc: &Path,
    root: &Path,
    global: &[String],
    args: I,
) -> Result<RuncOutput, RuntimeError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    std::fs::create_dir_all(root)
        .map_err(|e| RuntimeError::io(format!("creating runtime root {}", root.display()), e))?;
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let log: PathBuf = root.join(format!(".call-{}-{n}.log", std::process::id()));
    let output = tokio::process::Command::new(runc)
        .arg("--root")
        .arg(root)
        .arg("--log")
        .arg(&log)
        .args(["--log-format", "json"])
        .args(global)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| RuntimeError::io(format!("executing {}", runc.display()), e))?;
    let error = if output.status.success() {
        None
    } else {
        last_error(&log)
    };
    let _ = std::fs::remove_file(&log);
    Ok(RuncOutput { output, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_error_prefers_error_level() {
        let p = std::env::temp_dir().join(format!("cove-rt-runclog-{}", std::process::id()));
        std::fs::write(
            &p,
            "{\"level\":\"error\",\"msg\":\"exec: \\\"nope\\\": executable file not found in $PATH\",\"time\":\"t\"}\n\
             {\"level\":\"warning\",\"msg\":\"later warning\",\"time\":\"t\"}\nnot json\n",
        )
        .unwrap();
        assert_eq!(
            last_error(&p).as_deref(),
            Some("exec: \"nope\": executable file not found in $PATH")
        );
        // runsc: objects back to back, no newline.
        std::fs::write(
            &p,
            "{\"msg\":\"starting\",\"level\":\"info\"}{\"msg\":\"loading container: file does not exist\",\"level\":\"error\"}",
        )
        .unwrap();
        assert_eq!(
            last_error(&p).as_deref(),
            Some("loading container: file does not exist")
        );
        std::fs::remove_file(&p).unwrap();
        assert_eq!(last_error(&p), None);
    }
}
