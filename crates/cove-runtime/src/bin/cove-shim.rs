//! The per-container shim as a small executable of its own.
//!
//! The `cove` binary embeds this executable (see `crates/cove/build.rs`) and
//! the daemon runs it from its data dir: a shim lives as long as its
//! container, and this binary holds only the shim's code, so it stays near
//! 1 MB RSS where the full `cove` binary (relocated at load, with all of the
//! daemon's code) takes more. Invoked as `cove-shim shim <args...>`, exactly
//! like `cove shim <args...>`, which remains as a fallback.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("shim") {
        std::process::exit(cove_runtime::shim_main(&args[2..]));
    }
    eprintln!("usage: cove-shim shim <args...> (started by the cove daemon)");
    std::process::exit(2);
}
