//! Isolation proven by attacks: each test runs escape attempts inside a pod (the
//! `cove-probe` static binary, synced to `/app`, or busybox) and asserts every one is
//! refused, next to a control that must succeed, so a broken probe cannot pass.
//!
//! Every family runs under each isolation runtime the daemon offers (`runc`, and
//! `gvisor` once `cove run --isolation` exists); see [`attacker::Isolation`].
//!
//! Families: `processes` (seeing, signalling, tracing host and neighbour processes),
//! `files` (host and neighbour files, devices, /proc and /sys), `kernel` (mount, modules,
//! keyrings, bpf, perf, namespaces), `seccomp` (the syscall allowlist: io_uring, socket
//! families, personality, masked /proc/kpage*, and Python workloads that must keep working),
//! `network` (daemon, gateway, host services, neighbours, link-local), `exhaustion` (fork
//! bomb, memory, open files), `disk` (the per-pod disk limit), `hostile_clients`
//! (oversized, slow and malformed requests to the API and the gateway) and `connection_floods`
//! (thousands of idle, trickling and stalled-TLS connections to the API and the gateway).
#[path = "../common/mod.rs"]
mod common;

mod attacker;
mod connection_floods;
mod disk;
mod exhaustion;
mod files;
mod hostile_clients;
mod kernel;
mod network;
mod processes;
mod seccomp;
