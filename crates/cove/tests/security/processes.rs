//! A pod cannot see, signal or trace the host's or another pod's processes.

use std::process::{Child, Command};

use crate::attacker::*;
use crate::common::*;

/// A host process for the attacks to look for; killed when dropped.
pub struct HostProcess(pub Child);

impl HostProcess {
    /// `sleep <marker>`: the marker makes its command line unique.
    pub fn sleep(marker: &str) -> Self {
        HostProcess(Command::new("sleep").arg(marker).spawn().expect("sleep"))
    }

    pub fn pid(&self) -> String {
        self.0.id().to_string()
    }

    pub fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn host_and_neighbour_processes_are_out_of_reach(iso: Isolation) {
    let d = Daemon::start();
    let mut host = HostProcess::sleep("3141592");
    let _n = neighbour(&d, iso, "exec sleep 2718281");
    let a = Attacker::start(&d, iso, &[]);

    // Control: the pod sees its own processes and may trace its own children.
    a.succeeds(&["find-proc", "httpd"]);
    a.succeeds(&["ptrace-child"]);

    a.refused(&["find-proc", "3141592"]);
    a.refused(&["find-proc", "2718281"]);
    a.refused(&["find-proc", "--data-dir"]); // the daemon
    a.refused(&["find-proc", "cove-shim"]);
    a.refused(&["signal", &host.pid()]);
    a.refused(&["ptrace", &host.pid()]);
    a.refused(&["ptrace", &d.pid().unwrap().to_string()]);
    // Not even the pod's own init, which is outside the attacker's tree.
    a.refused(&["ptrace", "1"]);
    // Nor the other calls that need ptrace-attach permission: stealing an fd, reading memory.
    let out = a.refused(&["pidfd-getfd", "1"]);
    if iso == Isolation::Runc {
        // Refused by the filter, not because pidfd_open failed first.
        assert!(out.contains("pidfd_getfd(1"), "{out}");
    }
    a.refused(&["process-vm-read", "1"]);
    assert!(host.alive(), "the host process died");
}

per_runtime!(host_and_neighbour_processes_are_out_of_reach);
