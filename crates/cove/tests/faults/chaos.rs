//! SIGKILL the daemon at random points of its work, restart it, check everything; repeat.

use std::process::{Child, Stdio};
use std::time::Duration;

use crate::check::{self, deployment_host, deployments};
use crate::common::*;
use crate::fat_image::fat_image;
use crate::rng::Rng;

/// Pods left running at most; past this a create round stops one instead.
const MAX_RUNNING: usize = 6;
const HTTPD: &str = "httpd -f -p 8000 -h /www";
/// httpd that ignores SIGTERM: its stop takes the whole grace period (2 s in the harness).
const STUBBORN: &str = "sh -c 'trap \"\" TERM; httpd -f -p 8000 -h /www'";

#[derive(Debug, Clone, Copy)]
enum Op {
    Create,
    CreateExiting,
    Stop,
    Pull,
    Build,
    Deploy,
    Wake,
}

const OPS: [Op; 7] = [
    Op::Create,
    Op::CreateExiting,
    Op::Stop,
    Op::Pull,
    Op::Build,
    Op::Deploy,
    Op::Wake,
];

/// What a round set going when the daemon died: a CLI process or a request on a thread.
enum Work {
    Cli(Child),
    Request(std::thread::JoinHandle<()>),
}

fn deploy_manifest(d: &Daemon) -> String {
    let file = d.root.join("chaos.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"chaos\"\nimage = \"{}\"\nports = [8000]\nkeep_warm_seconds = 2\nentrypoint = {HTTPD:?}\n",
            registry().image("latest")
        ),
    )
    .unwrap();
    file.to_string_lossy().into_owned()
}

/// Starts `op` (or a stand-in when it cannot run now); returns the work and the longest
/// delay worth waiting before the kill (about how long the op takes).
fn start(d: &Daemon, op: Op, round: u64, seed_tag: &str, rng: &mut Rng) -> (Op, Work, u64) {
    let running: Vec<Container> = d
        .list(false)
        .into_iter()
        .filter(|c| c.deployment_id.is_none())
        .collect();
    let op = match op {
        Op::Create | Op::CreateExiting if running.len() >= MAX_RUNNING => Op::Stop,
        Op::Stop if running.is_empty() => Op::Create,
        Op::Wake if deployments(d).is_empty() => Op::Deploy,
        op => op,
    };
    let spawn = |args: &[&str]| {
        Work::Cli(
            d.cli_command(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawning cove"),
        )
    };
    let latest = registry().image("latest");
    match op {
        Op::Create => {
            let ep = if rng.below(2) == 0 { HTTPD } else { STUBBORN };
            let args = [
                "run",
                "--image",
                &latest,
                "--ports",
                "8000",
                "--keep-warm-seconds",
                "-1",
                "--entrypoint",
                ep,
            ];
            (op, spawn(&args), 400)
        }
        Op::CreateExiting => {
            let ep = format!("sh -c 'echo marker-{round}; sleep 0.2; exit 3'");
            let bare = registry().image("bare");
            let args = ["run", "--image", &bare, "--entrypoint", &ep];
            (op, spawn(&args), 400)
        }
        Op::Stop => {
            let victim = &running[rng.below(running.len() as u64) as usize];
            (op, spawn(&["container", "stop", &victim.id]), 2500)
        }
        Op::Pull => {
            let fat = fat_image();
            let listed = ok(&d.cli(&["image", "list", "--format", "json"]));
            if listed.contains("/fat:latest") {
                ok(&d.cli(&["image", "rm", &fat]));
            }
            (op, spawn(&["image", "pull", &fat]), 2500)
        }
        Op::Build => {
            let cmd = format!("head -c 3000000 /dev/urandom > /r-{seed_tag}-{round}; echo built");
            let args = ["image", "build", "--base", &latest, "--command", &cmd];
            (op, spawn(&args), 4000)
        }
        Op::Deploy => {
            let file = deploy_manifest(d);
            (op, spawn(&["deploy", &file]), 600)
        }
        Op::Wake => {
            let dep = wait_until(
                "the chaos deployment to sleep",
                Duration::from_secs(30),
                || {
                    deployments(d)
                        .into_iter()
                        .find(|dep| dep.name == "chaos" && dep.container.is_none())
                },
            );
            let (gw, host) = (d.gw(), deployment_host(&dep));
            let t = std::thread::spawn(move || {
                let _ = http_get(&gw, &host, "/");
            });
            (op, Work::Request(t), 400)
        }
    }
}

#[test]
fn sigkill_at_random_points_loses_nothing() {
    let rounds: u64 = std::env::var("COVE_FAULT_ROUNDS")
        .ok()
        .map(|s| s.parse().expect("COVE_FAULT_ROUNDS is a number"))
        .unwrap_or(20);
    let mut rng = Rng::from_env();
    let seed_tag = format!("{:x}", rng.next() & 0xffff_ffff);
    fat_image();
    let mut d = Daemon::start();
    // A first pod, deployment and build, so every kind of state exists from round one.
    let first = d.run_httpd("-1");
    d.wait_serving(&first, 8000, "/");
    let baseline = check::nft_lines(&d);
    assert!(baseline > 0, "no firewall table");
    let cgroups = check::cgroup_parents(&first.id);
    assert!(!cgroups.is_empty(), "no cgroup of {}", first.id);

    for round in 0..rounds {
        let pick = OPS[rng.below(OPS.len() as u64) as usize];
        let (op, work, max_delay) = start(&d, pick, round, &seed_tag, &mut rng);
        let delay = rng.below(max_delay);
        let what = format!("round {round} ({op:?}, killed after {delay} ms)");
        eprintln!("{what}");
        std::thread::sleep(Duration::from_millis(delay));
        d.kill9();
        match work {
            Work::Cli(mut child) => {
                // The client notices the daemon is gone; end it if it has not.
                let _ = child.kill();
                let _ = child.wait();
            }
            Work::Request(t) => {
                let _ = t.join();
            }
        }
        check::store_is_sound(&d);
        d.restart();
        check::everything(&d, baseline, &cgroups, &what);
    }
    // After all that, the daemon still does its job.
    let c = d.run_httpd("-1");
    assert_eq!(
        d.wait_serving(&c, 8000, "/").trim(),
        "Hello from a Cove pod"
    );
}

/// Found by the rounds above: a restarted daemon hands out addresses from the start again, and a
/// pod given the address of one that had just ended (and had been served) was unreachable from
/// the gateway until the host's ARP entry for the old veth expired (up to a minute).
#[test]
fn an_address_reused_after_a_restart_is_reachable_at_once() {
    let mut d = Daemon::start();
    let old = d.run_httpd("-1");
    d.wait_serving(&old, 8000, "/");
    // Another pod keeps the bridge's carrier up (without one, the kernel flushes its ARP table).
    let other = d.run_httpd("-1");
    d.wait_serving(&other, 8000, "/");
    ok(&d.cli(&["container", "stop", &old.id]));
    d.kill9();
    d.restart();
    let new = d.run_httpd("-1");
    assert_eq!(
        new.address, old.address,
        "the test wants the address reused"
    );
    let r = http_get(&d.gw(), &Daemon::host_for(&new, 8000), "/").expect("GET");
    assert_eq!(r.status, 200, "{r:?}");
}
