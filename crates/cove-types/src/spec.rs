//! Validation of a `CreatePodRequest` into the numbers the daemon works with.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{parse_cpu_millis, parse_memory_mib, CreatePodRequest, QuantityError};
use crate::{DEFAULT_CPU_MILLIS, DEFAULT_KEEP_WARM_SECONDS, DEFAULT_MEMORY_MIB};

/// A pod request whose every field has been checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidPodSpec {
    pub image: String,
    pub ports: Vec<u16>,
    pub cpu_millis: u64,
    pub memory_mib: u64,
    pub env: BTreeMap<String, String>,
    pub entrypoint: Option<Vec<String>>,
    pub name: Option<String>,
    pub keep_warm_seconds: i64,
    pub workdir: Option<String>,
    /// Size of the pod's writable layer in MiB; `None` (and specs stored before it
    /// existed): the daemon's `--default-disk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_mib: Option<u64>,
    /// Egress policy (absent in specs stored before it existed: open).
    #[serde(default)]
    pub egress: crate::EgressPolicy,
    /// Its URLs need a token of its workspace (absent in specs stored before: public).
    #[serde(default)]
    pub authorized: bool,
    /// The runtime that isolates it. `None` (and specs stored before it existed) means the
    /// daemon's `--default-isolation` at the time a container starts; `cove run` stores the
    /// default it was created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<crate::Isolation>,
    /// Bytes per log file; `None` (and specs stored before it existed): the daemon's
    /// `--log-max-size` when a container starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_max_size: Option<u64>,
    /// Log files kept; `None`: the daemon's `--log-max-files`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_max_files: Option<u32>,
}

impl ValidPodSpec {
    /// The pod's log cap: its own settings, the daemon's `default` for the rest.
    pub fn log_limit(&self, default: crate::LogLimit) -> crate::LogLimit {
        crate::LogLimit {
            max_size: self.log_max_size.unwrap_or(default.max_size),
            max_files: self.log_max_files.unwrap_or(default.max_files),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error("image must not be empty")]
    EmptyImage,
    #[error("port {0} is out of range: ports must be between 1 and 65535")]
    PortRange(i64),
    #[error("port {0} is listed more than once")]
    PortRepeated(u16),
    #[error("too many ports ({0}): at most 32")]
    TooManyPorts(usize),
    #[error(transparent)]
    Quantity(#[from] QuantityError),
    #[error("env name {0:?} is invalid: it must be non-empty and contain no '=' or NUL")]
    EnvName(String),
    #[error("env value of {0} contains a NUL byte")]
    EnvValue(String),
    #[error("entrypoint is empty")]
    EmptyEntrypoint,
    #[error("entrypoint contains a NUL byte")]
    EntrypointNul,
    #[error("keep_warm_seconds {0} is invalid: use -1 (never stop) or 0 and above")]
    KeepWarm(i64),
    #[error("name {0:?} is invalid: use 1-63 lowercase letters, digits and '-'")]
    Name(String),
    #[error("workdir {0:?} must be an absolute path")]
    Workdir(String),
    #[error("disk {0} is invalid: use MiB (like 1024) or a size (like \"1Gi\") between {MIN_DISK_MIB} MiB and 1 TiB")]
    Disk(String),
    #[error(transparent)]
    Egress(#[from] crate::EgressError),
    #[error(transparent)]
    Isolation(#[from] crate::IsolationError),
    #[error(transparent)]
    LogLimit(#[from] crate::LogLimitError),
}

/// Checks every field of a request, filling in defaults.
pub fn validate_pod_spec(req: &CreatePodRequest) -> Result<ValidPodSpec, SpecError> {
    let image = req.image.trim();
    if image.is_empty() {
        return Err(SpecError::EmptyImage);
    }
    if req.ports.len() > 32 {
        return Err(SpecError::TooManyPorts(req.ports.len()));
    }
    let mut ports: Vec<u16> = Vec::with_capacity(req.ports.len());
    for &p in &req.ports {
        if !(1..=65535).contains(&p) {
            return Err(SpecError::PortRange(p));
        }
        let p = p as u16;
        if ports.contains(&p) {
            return Err(SpecError::PortRepeated(p));
        }
        ports.push(p);
    }
    let cpu_millis = match &req.cpu {
        Some(q) => parse_cpu_millis(q)?,
        None => DEFAULT_CPU_MILLIS,
    };
    let memory_mib = match &req.memory {
        Some(q) => parse_memory_mib(q)?,
        None => DEFAULT_MEMORY_MIB,
    };
    for (k, v) in &req.env {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            return Err(SpecError::EnvName(k.clone()));
        }
        if v.contains('\0') {
            return Err(SpecError::EnvValue(k.clone()));
        }
    }
    if let Some(ep) = &req.entrypoint {
        if ep.is_empty() || ep[0].trim().is_empty() {
            return Err(SpecError::EmptyEntrypoint);
        }
        if ep.iter().any(|a| a.contains('\0')) {
            return Err(SpecError::EntrypointNul);
        }
    }
    let keep_warm_seconds = req.keep_warm_seconds.unwrap_or(DEFAULT_KEEP_WARM_SECONDS);
    if keep_warm_seconds < -1 {
        return Err(SpecError::KeepWarm(keep_warm_seconds));
    }
    if let Some(name) = &req.name {
        let ok = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-');
        if !ok {
            return Err(SpecError::Name(name.clone()));
        }
    }
    if let Some(w) = &req.workdir {
        if !w.starts_with('/') {
            return Err(SpecError::Workdir(w.clone()));
        }
    }
    let egress = crate::EgressPolicy::from_fields(req.block_network, &req.allow_list)?;
    let isolation = match &req.isolation {
        Some(i) => Some(i.parse::<crate::Isolation>()?),
        None => None,
    };
    let disk_mib = req.disk.as_ref().map(parse_disk_mib).transpose()?;
    let log_max_size = req
        .log_max_size
        .as_ref()
        .map(crate::parse_log_max_size)
        .transpose()?;
    let log_max_files = req
        .log_max_files
        .map(crate::check_log_max_files)
        .transpose()?;
    Ok(ValidPodSpec {
        image: image.to_string(),
        ports,
        cpu_millis,
        memory_mib,
        env: req.env.clone(),
        entrypoint: req.entrypoint.clone(),
        name: req.name.clone(),
        keep_warm_seconds,
        workdir: req.workdir.clone(),
        disk_mib,
        egress,
        authorized: req.authorized,
        isolation,
        log_max_size,
        log_max_files,
    })
}

/// Smallest disk limit: room for the filesystem's own metadata and a small writable layer.
pub const MIN_DISK_MIB: u64 = 32;

/// A disk size in MiB (same syntax as memory), at least [`MIN_DISK_MIB`].
pub fn parse_disk_mib(q: &crate::Quantity) -> Result<u64, SpecError> {
    let shown = match q {
        crate::Quantity::Number(n) => n.to_string(),
        crate::Quantity::Text(s) => format!("{s:?}"),
    };
    match parse_memory_mib(q) {
        Ok(mib) if mib >= MIN_DISK_MIB => Ok(mib),
        _ => Err(SpecError::Disk(shown)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> CreatePodRequest {
        CreatePodRequest {
            image: "busybox".into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults() {
        let s = validate_pod_spec(&req()).unwrap();
        assert_eq!(s.cpu_millis, 1000);
        assert_eq!(s.memory_mib, 128);
        assert_eq!(s.keep_warm_seconds, 600);
    }

    #[test]
    fn ports() {
        let mut r = req();
        r.ports = vec![0];
        assert_eq!(validate_pod_spec(&r), Err(SpecError::PortRange(0)));
        r.ports = vec![70000];
        assert_eq!(validate_pod_spec(&r), Err(SpecError::PortRange(70000)));
        r.ports = vec![80, 80];
        assert_eq!(validate_pod_spec(&r), Err(SpecError::PortRepeated(80)));
        r.ports = vec![80, 8080];
        assert!(validate_pod_spec(&r).is_ok());
    }

    #[test]
    fn log_limit() {
        let mut r = req();
        let d = crate::LogLimit::default();
        assert_eq!(validate_pod_spec(&r).unwrap().log_limit(d), d);
        r.log_max_size = Some("20Mi".into());
        r.log_max_files = Some(2);
        let s = validate_pod_spec(&r).unwrap();
        assert_eq!(
            s.log_limit(d),
            crate::LogLimit {
                max_size: 20 << 20,
                max_files: 2
            }
        );
        r.log_max_files = Some(0);
        assert!(matches!(
            validate_pod_spec(&r),
            Err(SpecError::LogLimit(crate::LogLimitError::Files(0)))
        ));
        r.log_max_files = None;
        r.log_max_size = Some("1Ki".into());
        assert!(matches!(
            validate_pod_spec(&r),
            Err(SpecError::LogLimit(crate::LogLimitError::Size(_)))
        ));
    }

    #[test]
    fn disk() {
        let mut r = req();
        assert_eq!(validate_pod_spec(&r).unwrap().disk_mib, None);
        r.disk = Some(crate::Quantity::Text("1Gi".into()));
        assert_eq!(validate_pod_spec(&r).unwrap().disk_mib, Some(1024));
        r.disk = Some(crate::Quantity::Number(64.0));
        assert_eq!(validate_pod_spec(&r).unwrap().disk_mib, Some(64));
        for bad in ["8Mi", "lots", "-1"] {
            r.disk = Some(crate::Quantity::Text(bad.into()));
            let err = validate_pod_spec(&r).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("disk \"{bad}\" is invalid")),
                "{err}"
            );
        }
        // A spec stored before the field existed still loads, unlimited.
        let mut old = serde_json::to_value(validate_pod_spec(&req()).unwrap()).unwrap();
        old.as_object_mut().unwrap().remove("disk_mib");
        let loaded: ValidPodSpec = serde_json::from_value(old).unwrap();
        assert_eq!(loaded.disk_mib, None);
    }

    #[test]
    fn entrypoint_and_env() {
        let mut r = req();
        r.entrypoint = Some(vec![]);
        assert_eq!(validate_pod_spec(&r), Err(SpecError::EmptyEntrypoint));
        r.entrypoint = None;
        r.env.insert("A=B".into(), "c".into());
        assert!(matches!(validate_pod_spec(&r), Err(SpecError::EnvName(_))));
        let mut r = req();
        r.keep_warm_seconds = Some(-5);
        assert_eq!(validate_pod_spec(&r), Err(SpecError::KeepWarm(-5)));
    }

    #[test]
    fn isolation() {
        let mut r = req();
        assert_eq!(validate_pod_spec(&r).unwrap().isolation, None);
        r.isolation = Some("gvisor".into());
        assert_eq!(
            validate_pod_spec(&r).unwrap().isolation,
            Some(crate::Isolation::Gvisor)
        );
        r.isolation = Some("kata".into());
        let err = validate_pod_spec(&r).unwrap_err();
        assert_eq!(
            err.to_string(),
            "isolation \"kata\" is invalid: use \"runc\" or \"gvisor\""
        );
        // A spec stored before the field existed still loads, without an isolation.
        let mut old = serde_json::to_value(validate_pod_spec(&req()).unwrap()).unwrap();
        old.as_object_mut().unwrap().remove("isolation");
        let loaded: ValidPodSpec = serde_json::from_value(old).unwrap();
        assert_eq!(loaded.isolation, None);
    }
}
