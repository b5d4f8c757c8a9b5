//! Invoking the runc CLI: one helper that runs `runc --root R --log <tmp> --log-format json ...`,
//! and reading runc's own error message from its JSON log (so it never mixes with container output).

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
            format!("runc exited with {}", self.output.status)
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

/// The last error-level (or, failing that, last) `msg` in a runc JSON log file.
pub(crate) fn last_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let lines: Vec<LogLine> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<LogLine>(l).ok())
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

/// Runs `runc --root <root> --log <unique file> --log-format json <args>` and collects its output.
/// The log file lives in `root` as a plain file (runc only treats directories as containers).
pub(crate) async fn run<I, S>(runc: &Path, root: &Path, args: I) -> Result<RuncOutput, RuntimeError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    std::fs::create_dir_all(root)
        .map_err(|e| RuntimeError::io(format!("creating runc root {}", root.display()), e))?;
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let log: PathBuf = root.join(format!(".call-{}-{n}.log", std::process::id()));
    let output = tokio::process::Command::new(runc)
        .arg("--root")
        .arg(root)
        .arg("--log")
        .arg(&log)
        .args(["--log-format", "json"])
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
        std::fs::remove_file(&p).unwrap();
        assert_eq!(last_error(&p), None);
    }
}
