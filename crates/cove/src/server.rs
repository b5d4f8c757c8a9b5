//! `cove server`: wires the daemon's parts together and runs them until a
//! signal. Containers keep running when the daemon stops; the next start
//! re-adopts them.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use cove_api::AppState;
use cove_gateway::{Gateway, GatewayConfig, Routes};
use cove_image::ImageStore;
use cove_lifecycle::{Lifecycle, LifecycleConfig};
use cove_network::{NetConfig, Network};
use cove_store::{SqliteStore, StoreHandle};
use cove_types::DaemonInfo;
use ipnet::Ipv4Net;
use nix::fcntl::{Flock, FlockArg};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::info;

/// Daemon settings; each flag can also come from `COVE_<FLAG>`.
#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Where state, images, logs and the API token live.
    #[arg(long, env = "COVE_DATA_DIR", default_value = "/var/lib/cove")]
    data_dir: PathBuf,
    /// Address of the HTTP API.
    #[arg(long, env = "COVE_API_LISTEN", default_value = "127.0.0.1:7310")]
    api_listen: SocketAddr,
    /// Address of the HTTP gateway that serves pods' ports.
    #[arg(long, env = "COVE_GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    gateway_listen: SocketAddr,
    /// Address of the HTTPS gateway (off unless set).
    #[arg(long, env = "COVE_GATEWAY_TLS_LISTEN")]
    gateway_tls_listen: Option<SocketAddr>,
    /// PEM certificate for the HTTPS gateway; a self-signed one for *.<domain> is made if absent.
    #[arg(long, env = "COVE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "COVE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Pods are served at <id>-<port>.<domain>.
    #[arg(long, env = "COVE_DOMAIN", default_value = "localhost")]
    domain: String,
    /// The pods' bridge network (IPv4 CIDR).
    #[arg(long, env = "COVE_SUBNET", default_value = "10.209.0.0/16")]
    subnet: Ipv4Net,
    /// Seconds between SIGTERM and SIGKILL when stopping a container.
    #[arg(long, env = "COVE_STOP_GRACE_SECONDS", default_value_t = 10)]
    stop_grace_seconds: u64,
    /// Registries reached over plain HTTP (loopback ones always are), comma-separated.
    #[arg(long, env = "COVE_INSECURE_REGISTRIES", value_delimiter = ',')]
    insecure_registries: Vec<String>,
    /// A CA bundle (e.g. /etc/ssl/certs/ca-certificates.crt) mounted read-only into image-build
    /// containers, with SSL_CERT_FILE, PIP_CERT and REQUESTS_CA_BUNDLE pointing at it: for hosts
    /// whose outbound TLS goes through an intercepting proxy. Off unless set.
    #[arg(long, env = "COVE_BUILD_CA_BUNDLE")]
    build_ca_bundle: Option<PathBuf>,
    /// Disk limit of pods that set none: MiB (1024) or a size (1Gi) for each pod's writable
    /// layer (a sparse loop-mounted ext4 of that size, one inode per 64 KiB), or `off`
    /// (unlimited: the data dir's filesystem).
    #[arg(long, env = "COVE_DEFAULT_DISK", default_value = "10Gi", value_parser = parse_default_disk)]
    default_disk: DefaultDisk,
    /// Disks of the --default-disk size kept formatted ahead in <data-dir>/disk-pool, so a
    /// create skips mkfs (0: every create formats its own).
    #[arg(long, env = "COVE_DISK_POOL", default_value_t = 4)]
    disk_pool: usize,
    /// The isolation of pods that do not ask for one: runc, or gvisor (gVisor's runsc; needs
    /// the runsc package).
    #[arg(long, env = "COVE_DEFAULT_ISOLATION", default_value = "runc")]
    default_isolation: cove_types::Isolation,
    /// How gVisor's sentry intercepts system calls: ptrace (works anywhere) or kvm (needs
    /// /dev/kvm and a host whose KVM works for it).
    #[arg(long, env = "COVE_GVISOR_PLATFORM", default_value = "ptrace", value_parser = ["ptrace", "kvm"])]
    gvisor_platform: String,
    /// Largest upload the API saves to disk, in bytes: an image archive, a build context or
    /// synced files. A bigger one is refused (413) and leaves nothing behind.
    #[arg(long, env = "COVE_MAX_UPLOAD_BYTES", default_value_t = cove_api::DEFAULT_MAX_UPLOAD_BYTES,
        value_parser = clap::value_parser!(u64).range(1..))]
    max_upload_bytes: u64,
    /// Largest size of one file of a container's log, for pods that set none: MiB (10) or a
    /// size (512Ki, 20Mi). The current file is rotated before it grows past it.
    #[arg(long, env = "COVE_LOG_MAX_SIZE", default_value = "10Mi", value_parser = parse_log_max_size)]
    log_max_size: u64,
    /// Log files kept per container, the current one included, for pods that set none: at
    /// most --log-max-size × --log-max-files bytes of log per container.
    #[arg(long, env = "COVE_LOG_MAX_FILES", default_value_t = cove_types::DEFAULT_LOG_MAX_FILES,
        value_parser = clap::value_parser!(u32).range(1..=100))]
    log_max_files: u32,
    /// The runc binary. Found in /usr/sbin, /usr/bin, /usr/local/sbin or /usr/local/bin when unset.
    #[arg(long, env = "COVE_RUNC")]
    runc: Option<PathBuf>,
    #[command(flatten)]
    workspace_limits: crate::workspace_limits::WorkspaceLimitArgs,
    #[command(flatten)]
    conn_limits: crate::conn_limits::ConnLimitArgs,
}

pub async fn run(args: ServerArgs) -> Result<()> {
    raise_open_file_limit();
    if let Some(ca) = &args.build_ca_bundle {
        anyhow::ensure!(
            ca.is_file(),
            "--build-ca-bundle {} is not a readable file",
            ca.display()
        );
    }
    if let Some(runc) = &args.runc {
        anyhow::ensure!(runc.is_file(), "--runc {} is not a file", runc.display());
    }
    let data_dir = &args.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let _lock = lock_data_dir(data_dir)?;
    let quota = args.workspace_limits.quota_config(&args.subnet)?;
    let token = load_or_create_token(&data_dir.join("token"))?;
    // Uploads interrupted by a crash or a client hanging up.
    let _ = std::fs::remove_dir_all(data_dir.join("tmp"));
    let store: StoreHandle = Arc::new(SqliteStore::open(&data_dir.join("state.db"))?);
    let images = ImageStore::open(data_dir, store.clone())?;
    images.set_insecure_registries(args.insecure_registries.clone());
    if let DefaultDisk(Some(mib)) = args.default_disk {
        images.start_disk_pool(mib, args.disk_pool)?;
    }
    let network = Network::setup(NetConfig {
        subnet: args.subnet,
        data_dir: data_dir.clone(),
    })
    .await
    .with_context(|| format!("setting up the pod network {}", args.subnet))?;
    let shim = crate::shim::install(data_dir)?;
    let runtime = runtimes(&args, data_dir, shim)?;
    let tokens = cove_api::tokens::TokenCache::load(store.clone(), &token)
        .await
        .context("loading API tokens")?;
    let routes = Routes::default();
    // The gateway checks authorized pods' tokens against the same in-memory cache.
    routes.access().set_token_check({
        let tokens = tokens.clone();
        Arc::new(move |t: &str| tokens.scope(t))
    });
    let gateway = Gateway::bind(
        GatewayConfig {
            tls_listen: args.gateway_tls_listen,
            tls_cert: args.tls_cert.clone(),
            tls_key: args.tls_key.clone(),
            connections: args.conn_limits.gateway(),
            ..GatewayConfig::new(args.gateway_listen, data_dir.clone(), args.domain.clone())
        },
        routes.clone(),
    )
    .await?;
    let api_listener = cove_api::bind(args.api_listen)
        .await
        .with_context(|| format!("cannot listen for the API on {}", args.api_listen))?;
    let gw_addr = gateway.local_addr();
    let gateway_tls = gateway.tls_local_addr().filter(|_| args.tls_cert.is_none());
    let info = DaemonInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        domain: args.domain.clone(),
        gateway_url: format!("http://{gw_addr}"),
        gateway_tls_url: gateway.tls_local_addr().map(|a| format!("https://{a}")),
        runtime: runtime_description(&runtime, args.default_isolation),
    };
    let lifecycle = Lifecycle::new(
        LifecycleConfig {
            data_dir: data_dir.clone(),
            domain: args.domain.clone(),
            url_scheme: "http".into(),
            url_port: (gw_addr.port() != 80).then_some(gw_addr.port()),
            cgroup_parent: format!("cove-{}", short_hash(&data_dir.to_string_lossy())),
            stop_grace: Duration::from_secs(args.stop_grace_seconds),
            pids_limit: 4096,
            default_disk_mib: args.default_disk.0,
            build_ca_bundle: args.build_ca_bundle.clone(),
            default_isolation: args.default_isolation,
            quota,
            default_log_limit: cove_types::LogLimit {
                max_size: args.log_max_size,
                max_files: args.log_max_files,
            },
        },
        store,
        images,
        network,
        runtime,
        routes,
    );
    lifecycle
        .reconcile()
        .await
        .context("reconciling state after start")?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let until_stop = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let keep_warm = tokio::spawn({
        let l = lifecycle.clone();
        async move { l.run_keep_warm().await }
    });
    let gw_task = tokio::spawn(gateway.serve(until_stop(stop_rx.clone())));
    let state = AppState {
        lifecycle: lifecycle.clone(),
        tokens,
        info: Arc::new(info),
        max_upload_bytes: args.max_upload_bytes,
    };
    let api_task = tokio::spawn(cove_api::serve(
        api_listener,
        state,
        args.conn_limits.api(),
        until_stop(stop_rx.clone()),
    ));
    if let Some(tls) = gateway_tls {
        info!(https = %tls, ca = %cove_gateway::ca_cert_path(data_dir).display(), "HTTPS gateway: trust this CA");
    }
    info!(api = %args.api_listen, gateway = %gw_addr, data_dir = %data_dir.display(), "cove daemon ready");

    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = int.recv() => info!("SIGINT: shutting down"),
    }
    let _ = stop_tx.send(true);
    keep_warm.abort();
    let _ = tokio::time::timeout(Duration::from_secs(5), api_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), gw_task).await;
    lifecycle.shutdown().await;
    Ok(())
}

/// runc, plus gVisor's runsc when it is installed (each with its own state root in the data dir).
fn runtimes(
    args: &ServerArgs,
    data_dir: &Path,
    shim: PathBuf,
) -> Result<Arc<cove_runtime::Runtimes>> {
    let mut runc = cove_runtime::Runc::new(data_dir.join("runc"), shim.clone());
    if let Some(binary) = &args.runc {
        runc = runc.with_runc_binary(binary.clone());
    }
    let gvisor = cove_runtime::find_runsc().map(|runsc| {
        info!(runsc = %runsc.display(), platform = %args.gvisor_platform, "gVisor isolation available");
        cove_runtime::Runc::gvisor(data_dir.join("runsc"), shim, runsc, &args.gvisor_platform)
    });
    let runtimes = cove_runtime::Runtimes::new(runc, gvisor);
    if !runtimes.supports(args.default_isolation) {
        bail!(
            "--default-isolation {}: runsc is not installed (apt-get install runsc)",
            args.default_isolation
        );
    }
    Ok(Arc::new(runtimes))
}

/// `GET /v1/info`'s runtime: the runtimes this daemon has, default first.
fn runtime_description(
    runtimes: &cove_runtime::Runtimes,
    default: cove_types::Isolation,
) -> String {
    let mut names = vec![format!("{default} (default)")];
    for i in cove_types::Isolation::ALL {
        if i != default && runtimes.supports(i) {
            names.push(i.to_string());
        }
    }
    names.join(", ")
}

/// Takes the data dir's lock for the daemon's life: two daemons on one data
/// dir would corrupt each other's state.
/// Raises the open-file soft limit to the hard limit. Every proxied connection holds two
/// descriptors (client and pod), and services often start with a soft limit of 1024: found by the
/// faults suite, where 1,000 concurrent gateway connections got `Too many open files`.
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => info!(from = soft, to = hard, "raised the open-file limit"),
            Err(e) => tracing::warn!(error = %e, soft, hard, "cannot raise the open-file limit"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit"),
    }
}

fn lock_data_dir(dir: &Path) -> Result<Flock<std::fs::File>> {
    let path = dir.join("daemon.lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut holder = String::new();
    let _ = file.read_to_string(&mut holder);
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => bail!(
            "another cove daemon (pid {}) is already using data dir {}",
            holder.trim_matches(|c: char| c.is_whitespace() || c == '\0'),
            dir.display()
        ),
        Err((_, e)) => bail!("cannot lock {}: {e}", path.display()),
    };
    lock.set_len(0)?;
    lock.seek(SeekFrom::Start(0))?;
    write!(&mut *lock, "{}", std::process::id())?;
    Ok(lock)
}

/// The API token: made once (random, mode 0600), then reused.
fn load_or_create_token(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let token = format!(
        "{}{}{}",
        cove_types::TOKEN_PREFIX,
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(token.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(token)
}

/// 8 hex digits naming this daemon's cgroups.
fn short_hash(s: &str) -> String {
    // FNV-1a: stable across builds, unlike std's hasher.
    let h = s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    format!("{:08x}", h as u32)
}

/// `--log-max-size`: a size like a pod's `log_max_size`.
fn parse_log_max_size(s: &str) -> Result<u64, String> {
    cove_types::parse_log_max_size(&cove_types::Quantity::Text(s.to_string()))
        .map_err(|e| e.to_string())
}

/// `--default-disk`: a size like a pod's `disk`, or `None` for `off` (or `0`).
#[derive(Debug, Clone, Copy)]
struct DefaultDisk(Option<u64>);

fn parse_default_disk(s: &str) -> Result<DefaultDisk, String> {
    if s == "off" || s == "0" {
        return Ok(DefaultDisk(None));
    }
    cove_types::parse_disk_mib(&cove_types::Quantity::Text(s.to_string()))
        .map(|mib| DefaultDisk(Some(mib)))
        .map_err(|e| format!("{e} (or \"off\" for no limit)"))
}
