//! What an attempt came to, and the exit code that tells the test.

use std::io;

pub enum Outcome {
    /// The attempt worked: exit 0.
    Succeeded(String),
    /// The attempt was refused: exit 1.
    Refused(String),
    /// The probe was called wrongly: exit 2.
    Usage(String),
}

impl Outcome {
    /// Prints the outcome as one line and returns the exit code.
    pub fn report(&self) -> i32 {
        match self {
            Outcome::Succeeded(m) => {
                println!("SUCCEEDED: {m}");
                0
            }
            Outcome::Refused(m) => {
                println!("refused: {m}");
                1
            }
            Outcome::Usage(m) => {
                eprintln!("{m}");
                2
            }
        }
    }
}

/// The errno of the last failed libc call.
pub fn errno() -> io::Error {
    io::Error::last_os_error()
}

/// Outcome of a syscall returning -1 on failure.
pub fn from_ret(what: &str, ret: i64) -> Outcome {
    if ret >= 0 {
        Outcome::Succeeded(format!("{what} returned {ret}"))
    } else {
        Outcome::Refused(format!("{what}: {}", errno()))
    }
}
