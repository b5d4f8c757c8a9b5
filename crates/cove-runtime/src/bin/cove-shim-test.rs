//! Test helper: a stand-in for the `cove` binary's `cove shim ...` dispatch, so the integration
//! tests can run real containers without depending on the binary crate.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("shim") {
        std::process::exit(cove_runtime::shim_main(&args[2..]));
    }
    eprintln!("usage: cove-shim-test shim <args...>");
    std::process::exit(2);
}
