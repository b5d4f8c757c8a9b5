//! Faults: nothing is lost and nothing is left behind when things go wrong.
//!
//! - [`chaos`]: the daemon is SIGKILLed at seeded random points during create, stop, image
//!   pull, image build, deploy and wake, restarted, and every invariant of [`check`] is checked
//!   after each round (`COVE_FAULT_ROUNDS`, `COVE_FAULT_SEED` to replay a failure).
//! - [`ends`]: a crash, a signal and an OOM kill say why, and their logs stay readable.
//! - [`load`]: 100 concurrent creates, 1,000 concurrent gateway connections, a pod streaming
//!   gigabytes through the gateway without growing the daemon.
//! - [`disk_full`]: a pull and a build on a full disk fail cleanly; the daemon works on after.
//!
//! Every test uses the shared harness (`tests/common`): its own daemon, data dir, ports and
//! subnet, and the leak check when its `Daemon` is dropped.
#[path = "../common/mod.rs"]
mod common;

mod api;
mod chaos;
mod check;
mod disk_full;
mod ends;
mod fat_image;
mod load;
mod rng;
