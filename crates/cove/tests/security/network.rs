//! A pod cannot reach the daemon's API, the gateway's listeners, host services, other
//! pods (exposed or not) or link-local addresses (cloud metadata).

use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use crate::attacker::*;
use crate::common::*;

/// The host's address on its default route, if it has one.
fn host_address() -> Option<String> {
    let o = Command::new("ip")
        .args(["-4", "route", "get", "1.1.1.1"])
        .output()
        .ok()?;
    let out = stdout(&o);
    let mut words = out.split_whitespace();
    words.find(|w| *w == "src")?;
    words.next().map(str::to_string)
}

fn host_daemon_and_neighbours_are_unreachable(iso: Isolation) {
    let d = Daemon::start();
    // A host service on every address, as a database or a metrics endpoint would be.
    let service = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = service.local_addr().unwrap().port().to_string();
    let bridge_ip = format!("{}.1", d.subnet.prefix);
    let n = neighbour(
        &d,
        iso,
        "httpd -p 9000 -h /www; exec httpd -f -p 8000 -h /www",
    );
    let n_ip = n.address.clone().expect("the neighbour's address");
    let n_ip = n_ip.split('/').next().unwrap().to_string();
    let a = Attacker::start(&d, iso, &[]);

    // Controls: the targets are there (the host reaches them), and the pod reaches its own
    // port over its loopback.
    d.wait_serving(&n, 8000, "/");
    for target in [
        format!("{bridge_ip}:{port}"),
        format!("{n_ip}:9000"),
        format!("{n_ip}:8000"),
    ] {
        wait_until(&format!("the host to reach {target}"), LONG, || {
            TcpStream::connect_timeout(&target.parse().unwrap(), Duration::from_secs(2)).ok()
        });
    }
    wait_until("the attacker's own httpd", LONG, || {
        (a.probe(&["connect", "127.0.0.1", "8000"]).code == Some(0)).then_some(())
    });

    let api = d.api_port.to_string();
    let gw = d.gw_port.to_string();
    let mut targets = vec![
        (bridge_ip.clone(), port.clone()),
        (bridge_ip.clone(), api.clone()),
        (bridge_ip.clone(), gw.clone()),
        (bridge_ip.clone(), "22".to_string()),
        ("127.0.0.1".to_string(), api),
        ("127.0.0.1".to_string(), gw),
        ("127.0.0.1".to_string(), port.clone()),
        (n_ip.clone(), "9000".to_string()),
        (n_ip.clone(), "8000".to_string()),
        ("169.254.169.254".to_string(), "80".to_string()),
    ];
    if let Some(host_ip) = host_address() {
        targets.push((host_ip.clone(), port.clone()));
        targets.push((host_ip, "22".to_string()));
    }
    for (ip, p) in &targets {
        a.refused(&["connect", ip, p]);
    }
    drop(service);
}

per_runtime!(host_daemon_and_neighbours_are_unreachable);
