//! A real `cove server` per test, with its own data dir, ports and subnet.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::*;

// ---------------------------------------------------------------- daemon

/// Options for [`Daemon::start_with`].
#[derive(Default, Clone)]
pub struct DaemonOpts {
    /// Serve HTTPS on a free port with the self-signed certificate.
    pub tls: bool,
    /// `--build-ca-bundle`: the host CA bundle build containers get.
    pub build_ca_bundle: Option<PathBuf>,
    /// More `cove server` arguments (e.g. `--default-disk 64Mi`).
    pub extra_server_args: Vec<String>,
    /// Serve pods from only the first `/N` (e.g. 29: five pod addresses) of the leased /24.
    pub subnet_prefix_len: Option<u8>,
}

/// A `cove server` of its own, stopped and checked on drop.
pub struct Daemon {
    child: Option<Child>,
    /// Holds the data dir and the daemon log.
    pub root: PathBuf,
    pub data_dir: PathBuf,
    pub api_port: u16,
    pub gw_port: u16,
    pub tls_port: Option<u16>,
    pub build_ca_bundle: Option<PathBuf>,
    pub extra_server_args: Vec<String>,
    pub subnet_prefix_len: Option<u8>,
    pub subnet: SubnetLease,
    pub token: String,
    /// The daemon's bridge, once seen.
    bridge: Mutex<Option<String>>,
    /// Host veth names seen on the bridge.
    veths: Mutex<Vec<String>>,
    /// Container ids seen.
    ids: Mutex<Vec<String>>,
}

impl Daemon {
    /// A daemon with default options, up and answering `/v1/health`.
    pub fn start() -> Self {
        Self::start_with(DaemonOpts::default())
    }

    pub fn start_with(opts: DaemonOpts) -> Self {
        let root = tempdir("cove-test");
        let mut d = Daemon {
            child: None,
            data_dir: root.join("data"),
            root,
            api_port: free_port(),
            gw_port: free_port(),
            tls_port: opts.tls.then(free_port),
            build_ca_bundle: opts.build_ca_bundle.clone(),
            extra_server_args: opts.extra_server_args.clone(),
            subnet_prefix_len: opts.subnet_prefix_len,
            subnet: SubnetLease::take(),
            token: String::new(),
            bridge: Mutex::new(None),
            veths: Mutex::new(Vec::new()),
            ids: Mutex::new(Vec::new()),
        };
        d.spawn();
        d
    }

    /// `cove server ...` for this daemon's settings (not started).
    pub fn server_command(&self) -> Command {
        let mut cmd = Command::new(COVE);
        cmd.arg("server")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--api-listen")
            .arg(format!("127.0.0.1:{}", self.api_port))
            .arg("--gateway-listen")
            .arg(format!("127.0.0.1:{}", self.gw_port))
            .arg("--subnet")
            .arg(match self.subnet_prefix_len {
                Some(len) => format!("{}.0/{len}", self.subnet.prefix),
                None => self.subnet.cidr.clone(),
            })
            .arg("--stop-grace-seconds")
            .arg("2");
        if let Some(ca) = &self.build_ca_bundle {
            cmd.arg("--build-ca-bundle").arg(ca);
        }
        cmd.args(&self.extra_server_args);
        if let Some(p) = self.tls_port {
            cmd.arg("--gateway-tls-listen")
                .arg(format!("127.0.0.1:{p}"));
        }
        cmd.env_remove("COVE_API_URL")
            .env_remove("COVE_TOKEN")
            .env("COVE_LOG", "info")
            .env("NO_COLOR", "1");
        cmd
    }

    fn log_path(&self) -> PathBuf {
        self.root.join("daemon.log")
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = self
            .server_command()
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting cove server");
        self.child = Some(child);
        let api = format!("127.0.0.1:{}", self.api_port);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http_get(&api, "127.0.0.1", "/v1/health") {
                if r.status == 200 && r.body.trim() == "ok" {
                    break;
                }
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!(
                    "cove server exited ({st}) before it was ready:\n{}",
                    self.log()
                );
            }
            if Instant::now() > deadline {
                panic!("cove server not ready after 60 s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // /v1/health may answer a moment before the "ready" line is written.
        wait_until(
            "`cove daemon ready` in the daemon log",
            Duration::from_secs(10),
            || self.log().contains("cove daemon ready").then_some(()),
        );
        self.token = std::fs::read_to_string(self.data_dir.join("token"))
            .expect("token file")
            .trim()
            .into();
        assert!(!self.token.is_empty());
        self.bridge();
    }

    /// `127.0.0.1:<gateway port>`.
    pub fn gw(&self) -> String {
        format!("127.0.0.1:{}", self.gw_port)
    }

    /// `cove <args>` against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        let o = self.cli_command(args).output().expect("running cove");
        self.note_ids(&stdout(&o));
        o
    }

    /// The `Command` for `cove <args>` against this daemon (for streaming commands).
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(COVE);
        cmd.args(args)
            .env(
                "COVE_API_URL",
                format!("http://127.0.0.1:{}", self.api_port),
            )
            .env("COVE_TOKEN", &self.token)
            .env("COVE_DATA_DIR", &self.data_dir)
            .env_remove("COVE_LOG")
            .stdin(Stdio::null());
        cmd
    }

    fn note_ids(&self, text: &str) {
        let mut ids = self.ids.lock().unwrap();
        for w in text.split(|c: char| c.is_whitespace() || c == '"' || c == ',') {
            if w.starts_with("pod-") && w.len() > 40 && !ids.iter().any(|i| i == w) {
                ids.push(w.to_string());
            }
        }
    }

    /// `cove run <args> --format json`, asserting success; returns the container.
    #[track_caller]
    pub fn run_pod(&self, args: &[&str]) -> Container {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--format", "json"]);
        let out = ok(&self.cli(&all));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("cove run --format json: {e}: {out}"))
    }

    /// The busybox httpd pod of the README on port 8000.
    pub fn run_httpd(&self, keep_warm: &str) -> Container {
        self.run_pod(&[
            "--image",
            &registry().image("latest"),
            "--ports",
            "8000",
            "--keep-warm-seconds",
            keep_warm,
        ])
    }

    /// `cove container inspect <id>`.
    #[track_caller]
    pub fn inspect(&self, id: &str) -> Container {
        let out = ok(&self.cli(&["container", "inspect", id]));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("inspect json: {e}: {out}"))
    }

    /// `cove container list [--all] --format json`.
    #[track_caller]
    pub fn list(&self, all: bool) -> Vec<Container> {
        let mut args = vec!["container", "list", "--format", "json"];
        if all {
            args.push("--all");
        }
        let out = ok(&self.cli(&args));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("list json: {e}: {out}"))
    }

    /// Waits until container `id` has `status`; returns it.
    #[track_caller]
    pub fn wait_status(&self, id: &str, status: ContainerStatus, timeout: Duration) -> Container {
        let mut last = None;
        let r = {
            let deadline = Instant::now() + timeout;
            loop {
                let c = self.inspect(id);
                if c.status == status {
                    break Some(c);
                }
                last = Some(c);
                if Instant::now() > deadline {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        };
        r.unwrap_or_else(|| {
            panic!("{id} did not become {status:?} within {timeout:?}; last: {last:?}")
        })
    }

    /// `Host` header for a container's port: `<stub uuid>-<port>.localhost`.
    pub fn host_for(c: &Container, port: u16) -> String {
        format!("{}-{port}.localhost", c.stub_id)
    }

    /// GET through the gateway with the pod's Host header.
    pub fn get(&self, c: &Container, port: u16, path: &str) -> Response {
        http_get(&self.gw(), &Self::host_for(c, port), path)
            .unwrap_or_else(|e| panic!("GET {path} via gateway for {}: {e}", c.id))
    }

    /// Waits until the pod's `port` answers 200 on `path`; returns the body.
    #[track_caller]
    pub fn wait_serving(&self, c: &Container, port: u16, path: &str) -> String {
        let mut last;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match http_get(&self.gw(), &Self::host_for(c, port), path) {
                Ok(r) if r.status == 200 => return r.body,
                Ok(r) => last = format!("{} {}", r.status, r.body),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() > deadline {
                panic!(
                    "{} port {port} never answered 200 on {path}: last {last}\n{}",
                    c.id,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The daemon's bridge: the link holding the subnet's first address.
    pub fn bridge(&self) -> Option<String> {
        let mut b = self.bridge.lock().unwrap();
        if b.is_none() {
            let want = format!(" inet {}.1/", self.subnet.prefix);
            let o = sh("ip -o -4 addr show");
            *b = stdout(&o)
                .lines()
                .find(|l| l.contains(&want))
                .and_then(|l| l.split_whitespace().nth(1))
                .map(str::to_string);
        }
        b.clone()
    }

    /// Host veths attached to the bridge now (and remembered for the leak check).
    pub fn veths(&self) -> Vec<String> {
        let Some(br) = self.bridge() else {
            return vec![];
        };
        let o = sh(&format!("ip -o link show master {br} 2>/dev/null"));
        let now: Vec<String> = stdout(&o)
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect();
        let mut seen = self.veths.lock().unwrap();
        for n in &now {
            if !seen.contains(n) {
                seen.push(n.clone());
            }
        }
        now
    }

    /// Mount points under the data dir but outside its disk pool (pods' mounts).
    pub fn mounts(&self) -> Vec<String> {
        let pool = self.pool_prefix();
        self.all_mounts()
            .into_iter()
            .filter(|m| !m.starts_with(&pool))
            .collect()
    }

    /// Every mount point under the data dir, the disk pool's included.
    pub fn all_mounts(&self) -> Vec<String> {
        let dd = self.data_dir.to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/mounts")
            .unwrap()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| m.starts_with(&dd))
            .map(str::to_string)
            .collect()
    }

    /// `<data dir>/disk-pool/`: where the daemon keeps disks mounted ahead of creates.
    fn pool_prefix(&self) -> String {
        format!("{}/", self.data_dir.join("disk-pool").display())
    }

    /// Loop devices backed by a pod's disk (a file under the data dir outside the disk
    /// pool), as `/dev/loopN (file)`.
    pub fn loop_devices(&self) -> Vec<String> {
        let pool = self.pool_prefix();
        self.all_loop_devices()
            .into_iter()
            .filter(|l| !l.contains(&pool))
            .collect()
    }

    /// Loop devices backed by a file under the data dir, the disk pool's included.
    pub fn all_loop_devices(&self) -> Vec<String> {
        let dd = self.data_dir.to_string_lossy().into_owned();
        let Ok(rd) = std::fs::read_dir("/sys/block") else {
            return vec![];
        };
        rd.flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let backing = std::fs::read_to_string(e.path().join("loop/backing_file")).ok()?;
                let backing = backing.trim();
                backing
                    .starts_with(&dd)
                    .then(|| format!("/dev/{name} ({backing})"))
            })
            .collect()
    }

    /// gVisor leftovers: containers runsc still knows in the daemon's runsc root, files left in
    /// that root, and runsc processes (sandbox, gofer) started with it. Waits a little for
    /// processes that are exiting.
    pub fn runsc_leftovers(&self) -> Vec<String> {
        let root = self.data_dir.join("runsc");
        let mut left = Vec::new();
        if root.is_dir() {
            let o = sh(&format!(
                "runsc --root {} list -quiet 2>/dev/null",
                root.display()
            ));
            left.extend(
                stdout(&o)
                    .lines()
                    .map(|id| format!("runsc container left: {id}")),
            );
            // Its state (`<id>_sandbox:<id>.state`, `.lock`) and the daemon's call logs.
            if left.is_empty() {
                let files = std::fs::read_dir(&root).into_iter().flatten().flatten();
                left.extend(files.map(|e| format!("runsc root file left: {}", e.path().display())));
            }
        }
        let procs = wait_until_or(Duration::from_secs(10), || {
            let p = runsc_processes(&root);
            p.is_empty().then_some(()).ok_or(p)
        });
        if let Err(p) = procs {
            left.extend(
                p.into_iter()
                    .map(|(pid, cmd)| format!("runsc process left: {pid} {cmd}")),
            );
        }
        left
    }

    /// Files under `<data-dir>/netns`.
    pub fn netns_files(&self) -> Vec<String> {
        std::fs::read_dir(self.data_dir.join("netns"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// cgroup directories named after container `id` (v1: /sys/fs/cgroup/<ctrl>/<parent>/<id>).
    pub fn cgroups_of(id: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let Ok(ctrls) = std::fs::read_dir("/sys/fs/cgroup") else {
            return found;
        };
        for ctrl in ctrls.flatten() {
            let p = ctrl.path();
            if p.join(id).is_dir() {
                found.push(p.join(id));
            }
            let Ok(parents) = std::fs::read_dir(&p) else {
                continue;
            };
            for parent in parents.flatten() {
                let q = parent.path().join(id);
                if q.is_dir() {
                    found.push(q);
                }
            }
        }
        found
    }

    /// What is left of container `id` on the host: its rootfs mount, netns file, cgroups,
    /// loop device.
    pub fn leftovers_of(&self, id: &str) -> Vec<String> {
        let mut left = Vec::new();
        let rootfs = self.data_dir.join("containers").join(id).join("rootfs");
        let rootfs = rootfs.to_string_lossy().into_owned();
        for m in self.mounts() {
            if m.starts_with(&rootfs) || m.contains(id) {
                left.push(format!("mount {m}"));
            }
        }
        if self.data_dir.join("netns").join(id).exists() {
            left.push(format!(
                "netns file {}",
                self.data_dir.join("netns").join(id).display()
            ));
        }
        for cg in Self::cgroups_of(id) {
            left.push(format!("cgroup {}", cg.display()));
        }
        for l in self.loop_devices() {
            if l.contains(id) {
                left.push(format!("loop device {l}"));
            }
        }
        left
    }

    /// The daemon's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILLs the daemon (containers keep running).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERMs the daemon and waits for it to exit; returns its exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return Some(st);
            }
            if Instant::now() > deadline {
                eprintln!("cove server ignored SIGTERM for 30 s; killing it");
                let _ = c.kill();
                return c.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the daemon again on the same data dir, ports and subnet.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart: the daemon still runs");
        self.spawn();
    }

    /// Stops everything and returns what was left behind.
    fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.child.is_some() {
            let ids: Vec<String> =
                match self.cli(&["container", "list", "--all", "--format", "json"]) {
                    o if o.status.success() => serde_json::from_slice::<Vec<Container>>(&o.stdout)
                        .map(|v| v.into_iter().map(|c| c.id).collect())
                        .unwrap_or_default(),
                    o => {
                        problems.push(format!("container list failed: {}", out_str(&o)));
                        vec![]
                    }
                };
            self.note_ids(&ids.join(" "));
            self.veths();
            for c in self.list(false) {
                let o = self.cli(&["container", "stop", &c.id]);
                if !o.status.success() {
                    problems.push(format!("stopping {}: {}", c.id, out_str(&o)));
                }
            }
            let live = wait_until_or(Duration::from_secs(30), || {
                let l = self.list(false);
                l.is_empty().then_some(()).ok_or(l)
            });
            if let Err(l) = live {
                problems.push(format!("containers still live after stop: {l:?}"));
            }
            match self.terminate() {
                Some(st) if st.success() => {}
                st => problems.push(format!("cove server exited with {st:?} on SIGTERM")),
            }
        }
        for m in self.all_mounts() {
            problems.push(format!("mount left: {m}"));
        }
        for n in self.netns_files() {
            problems.push(format!("netns file left: {n}"));
        }
        problems.extend(self.runsc_leftovers());
        for l in self.all_loop_devices() {
            problems.push(format!("loop device left: {l}"));
        }
        let veths = self.veths.lock().unwrap().clone();
        for v in veths {
            if sh(&format!("ip link show {v} >/dev/null 2>&1"))
                .status
                .success()
            {
                problems.push(format!("veth left: {v}"));
            }
        }
        if let Some(br) = self.bridge.lock().unwrap().clone() {
            if sh(&format!("ip link show {br} >/dev/null 2>&1"))
                .status
                .success()
            {
                problems.push(format!("bridge left: {br}"));
            }
            let table = format!("cove_{}", br.trim_start_matches("cove"));
            if stdout(&sh("nft list tables 2>/dev/null")).contains(&table) {
                problems.push(format!("nftables table left: {table}"));
            }
        }
        let ids = self.ids.lock().unwrap().clone();
        for id in ids {
            for cg in Self::cgroups_of(&id) {
                problems.push(format!("cgroup left: {}", cg.display()));
            }
        }
        problems
    }

    /// Removes whatever teardown found left, so a failing test still leaves nothing behind.
    fn force_clean(&self) {
        let runc_root = self.data_dir.join("runc");
        if runc_root.is_dir() {
            let o = sh(&format!(
                "runc --root {} list -q 2>/dev/null",
                runc_root.display()
            ));
            for id in stdout(&o).lines() {
                let _ = sh(&format!(
                    "runc --root {} delete -f {id} >/dev/null 2>&1",
                    runc_root.display()
                ));
            }
        }
        let runsc_root = self.data_dir.join("runsc");
        if runsc_root.is_dir() {
            let r = runsc_root.display();
            let o = sh(&format!("runsc --root {r} list -quiet 2>/dev/null"));
            for id in stdout(&o).lines() {
                let _ = sh(&format!(
                    "runsc --root {r} delete -force {id} >/dev/null 2>&1"
                ));
            }
        }
        for (pid, _) in runsc_processes(&runsc_root) {
            // SAFETY: plain kill(2) of a runsc process started with this daemon's own root.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let mut mounts = self.all_mounts();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = sh(&format!("umount -l '{m}' 2>/dev/null"));
        }
        for v in self.veths.lock().unwrap().iter() {
            let _ = sh(&format!("ip link del {v} 2>/dev/null"));
        }
        for l in self.all_loop_devices() {
            let dev = l.split(' ').next().unwrap_or_default();
            let _ = sh(&format!("losetup -d {dev} 2>/dev/null"));
        }
        if let Some(br) = self.bridge.lock().unwrap().clone() {
            let _ = sh(&format!("ip link del {br} 2>/dev/null"));
            let _ = sh(&format!(
                "nft delete table inet cove_{} 2>/dev/null",
                br.trim_start_matches("cove")
            ));
        }
        for id in self.ids.lock().unwrap().iter() {
            for cg in Self::cgroups_of(id) {
                let _ = std::fs::remove_dir(cg);
            }
        }
    }
}

/// Processes whose command line has `--root=<root>` (runsc's sandbox and gofer), as (pid, cmd).
fn runsc_processes(root: &std::path::Path) -> Vec<(i32, String)> {
    let want = format!("--root={}", root.display());
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    rd.flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let args: Vec<String> = cmd
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            args.contains(&want)
                .then(|| (pid, args.join(" ").chars().take(120).collect()))
        })
        .collect()
}

fn wait_until_or<T, E>(timeout: Duration, mut f: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let problems = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.teardown()))
            .unwrap_or_else(|_| vec!["teardown panicked".into()]);
        if !problems.is_empty() {
            self.force_clean();
        }
        let log = self.log();
        if problems.is_empty() || std::env::var_os("COVE_TEST_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
        if !problems.is_empty() {
            let msg = format!(
                "left behind by the daemon on {}:\n  {}\n--- daemon log (tail)\n{}",
                self.data_dir.display(),
                problems.join("\n  "),
                tail(&log, 60)
            );
            if std::thread::panicking() {
                eprintln!("{msg}");
            } else {
                panic!("{msg}");
            }
        } else if std::thread::panicking() {
            eprintln!("--- daemon log (tail)\n{}", tail(&log, 60));
        }
    }
}
