//! Which OCI runtime isolates a pod: runc (Linux namespaces and cgroups on the
//! host kernel) or gVisor's runsc (an application kernel in user space between
//! the pod and the host kernel).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A pod's isolation. The wire form is lowercase: `"runc"` or `"gvisor"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// runc: namespaces, dropped capabilities, seccomp and cgroups on the host kernel.
    #[default]
    Runc,
    /// gVisor (`runsc`): the pod's system calls are served by gVisor's own kernel.
    Gvisor,
}

/// An isolation name that is neither `runc` nor `gvisor`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("isolation {0:?} is invalid: use \"runc\" or \"gvisor\"")]
pub struct IsolationError(pub String);

impl Isolation {
    /// Every value, in the order they are documented.
    pub const ALL: [Isolation; 2] = [Isolation::Runc, Isolation::Gvisor];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Runc => "runc",
            Isolation::Gvisor => "gvisor",
        }
    }
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Isolation {
    type Err = IsolationError;

    /// Exact lowercase names only (`runc`, `gvisor`), after trimming blanks.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Isolation::ALL
            .into_iter()
            .find(|i| i.as_str() == s.trim())
            .ok_or_else(|| IsolationError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_wire_names() {
        assert_eq!("runc".parse(), Ok(Isolation::Runc));
        assert_eq!(" gvisor ".parse(), Ok(Isolation::Gvisor));
        let err = "kata".parse::<Isolation>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "isolation \"kata\" is invalid: use \"runc\" or \"gvisor\""
        );
        assert!("GVISOR".parse::<Isolation>().is_err());
        assert_eq!(Isolation::Gvisor.to_string(), "gvisor");
        assert_eq!(
            serde_json::to_string(&Isolation::Gvisor).unwrap(),
            "\"gvisor\""
        );
        assert_eq!(Isolation::default(), Isolation::Runc);
    }
}
