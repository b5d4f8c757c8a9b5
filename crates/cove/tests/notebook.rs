//! A real Jupyter server (jupyter_server and ipykernel from PyPI) in a pod, used through the
//! gateway the way a browser uses it: `tests/clients/jupyter.py` keeps Jupyter's cookies, sends
//! its `_xsrf` token, starts a kernel over the REST API and runs code over the kernel's WebSocket
//! with an Origin header. Then the same behind `--authorized`, the token exchanged for the
//! gateway's cookie by a navigation.
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const LONG: Duration = Duration::from_secs(120);
const JUPYTER: &str = "jupyter server --ip=0.0.0.0 --port=8888 --allow-root \
     --IdentityProvider.token= --ServerApp.password= --ServerApp.root_dir=/tmp";

#[test]
fn a_real_jupyter_server_runs_code_through_the_gateway() {
    let Some(d) = python_build_daemon() else {
        return;
    };
    let out = ok(&d.cli(&[
        "image",
        "build",
        "--base",
        PYTHON_BASE,
        "--command",
        APT_PIP,
        "--python-packages",
        "jupyter_server==2.21.1",
        "--python-packages",
        "ipykernel==7.4.0",
    ]));
    let image = built_reference(&out);
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/jupyter.py");
    for authorized in [false, true] {
        let mut args = vec![
            "--image",
            &image,
            "--ports",
            "8888",
            "--memory",
            "1024",
            "--keep-warm-seconds",
            "-1",
            "--entrypoint",
            JUPYTER,
        ];
        if authorized {
            args.push("--authorized");
        }
        let pod = d.run_pod(&args);
        assert_eq!(pod.authorized, authorized);
        let host = Daemon::host_for(&pod, 8888);
        let probe = if authorized {
            format!("/api?auth_token={}", d.token)
        } else {
            "/api".to_string()
        };
        wait_until("Jupyter to answer through the gateway", LONG, || {
            http_get(&d.gw(), &host, &probe)
                .ok()
                .filter(|r| r.status == 200)
        });
        let mut cmd = Command::new("python3");
        cmd.arg(&client)
            .arg("127.0.0.1")
            .arg(d.gw_port.to_string())
            .arg(&host);
        if authorized {
            cmd.arg("--token").arg(&d.token);
        }
        let o = cmd.output().expect("running python3");
        let logs = stdout(&d.cli(&["container", "logs", &pod.id]));
        assert!(
            o.status.success(),
            "authorized={authorized}: {}\n{}\n--- Jupyter's log\n{}",
            stdout(&o),
            stderr(&o),
            tail(&logs, 40)
        );
        assert!(
            stdout(&o).contains("kernel ran the code: 42"),
            "{}",
            stdout(&o)
        );
        ok(&d.cli(&["container", "stop", &pod.id]));
    }
}
