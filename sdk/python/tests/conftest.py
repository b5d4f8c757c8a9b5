"""A real Cove daemon for the SDK tests (no mocked HTTP).

Session fixtures, mirroring the Rust harness (crates/cove/tests/common/mod.rs):

- ``cove_bin``: ``target/debug/cove``, built with ``cargo build -p cove`` (``$COVE_BIN`` overrides).
- ``registry``: ``scripts/registry.sh start`` on a free loopback port, holding the busybox test
  image of ``scripts/build-test-image.sh`` (``busybox:latest``, ``busybox:bare``).
- ``daemon``: ``cove server`` with its own data dir under /tmp, free API and gateway ports and a
  /24 under 10.140.0.0/12..10.149 the host does not route; ``COVE_API_URL``/``COVE_TOKEN`` point
  at it for the whole session. Teardown stops every container, SIGTERMs the daemon, stops the
  registry and fails if a mount, netns file, veth or bridge is left.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple, TypeVar
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPTS = REPO / "scripts"
TARGET_TMP = REPO / "target" / "tmp"
SUBNET_LOCKS = Path("/tmp/cove-test-subnets")

T = TypeVar("T")


def wait_until(what: str, timeout: float, cond: Callable[[], Optional[T]]) -> T:
    """Polls ``cond`` every 100 ms until it returns something other than None/False."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: List[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def http_get(url: str, gateway: str, timeout: float = 10.0) -> Tuple[int, str]:
    """GET ``url`` by connecting to ``gateway`` (host:port) with the URL's Host header
    (``*.localhost`` names do not resolve through glibc)."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host, port = gateway.rsplit(":", 1)
    req = urllib.request.Request(f"http://{host}:{port}{path}", headers={"Host": parts.netloc})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


# ------------------------------------------------------------------ binary, images, registry


@pytest.fixture(scope="session")
def cove_bin() -> Path:
    if os.environ.get("COVE_BIN"):
        return Path(os.environ["COVE_BIN"])
    binary = REPO / "target" / "debug" / "cove"
    cargo = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
    o = run([cargo, "build", "-p", "cove", "--locked"], cwd=REPO)
    if o.returncode != 0:
        if binary.exists():
            print(f"warning: cargo build -p cove failed; testing the existing {binary}\n{o.stderr[-2000:]}")
        else:
            pytest.fail(f"cargo build -p cove failed:\n{o.stderr[-4000:]}")
    return binary


def _locked_build(lock_name: str, cmd: List[str]) -> subprocess.CompletedProcess:
    TARGET_TMP.mkdir(parents=True, exist_ok=True)
    with open(TARGET_TMP / lock_name, "w") as lock:
        # Shared with the Rust harness (same lock file for the busybox image).
        fcntl.flock(lock, fcntl.LOCK_EX)
        return run(cmd, cwd=REPO)


@pytest.fixture(scope="session")
def test_image_layout() -> Path:
    out = TARGET_TMP / "cove-test-image"
    o = _locked_build("cove-test-image.lock", ["bash", str(SCRIPTS / "build-test-image.sh"), str(out)])
    assert o.returncode == 0, f"build-test-image.sh failed:\n{o.stdout}\n{o.stderr}"
    return out


@dataclass
class Registry:
    addr: str
    port: int
    dir: Path

    def image(self, repo_tag: str = "busybox:latest") -> str:
        return f"{self.addr}/{repo_tag}"

    def push_layout(self, layout: Path, tag: str, repo_tag: str) -> str:
        """Copies ``layout:tag`` into this registry as ``repo_tag``; returns the reference."""
        o = run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                 f"oci:{layout}:{tag}", f"docker://{self.addr}/{repo_tag}"])
        assert o.returncode == 0, f"skopeo copy: {o.stderr}"
        return self.image(repo_tag)


@pytest.fixture(scope="session")
def registry(test_image_layout: Path) -> Iterator[Registry]:
    d = Path(tempfile.mkdtemp(prefix="cove-test-sdk-registry-", dir="/tmp"))
    port = free_port()
    try:
        o = run(["bash", str(SCRIPTS / "registry.sh"), "start", str(port), str(d)])
        assert o.returncode == 0, f"registry.sh start: {o.stderr}"
        o = run(["bash", str(SCRIPTS / "registry.sh"), "push", str(test_image_layout), str(port)])
        assert o.returncode == 0, f"registry.sh push: {o.stderr}"
        yield Registry(addr=f"127.0.0.1:{port}", port=port, dir=d)
    finally:
        run(["bash", str(SCRIPTS / "registry.sh"), "stop", str(d)])
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ subnet


def _routed(prefix: Tuple[int, int]) -> bool:
    """Whether a route in /proc/net/route overlaps 10.a.b.0/24."""
    ours = (10 << 24) | (prefix[0] << 16) | (prefix[1] << 8)
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return False
    for line in lines:
        f = line.split()
        if len(f) < 8:
            continue
        dest = int.from_bytes(bytes.fromhex(f[1]), "little")
        mask = int.from_bytes(bytes.fromhex(f[7]), "little")
        if mask == 0:
            continue  # the default route
        wide = mask if mask < 0xFFFFFF00 else 0xFFFFFF00
        if (ours & wide) == (dest & wide):
            return True
    return False


@dataclass
class SubnetLease:
    cidr: str
    prefix: str
    file: Path

    @classmethod
    def take(cls) -> "SubnetLease":
        SUBNET_LOCKS.mkdir(parents=True, exist_ok=True)
        candidates = [(a, b) for a in range(140, 150) for b in range(256)]
        random.shuffle(candidates)
        for a, b in candidates:
            if _routed((a, b)):
                continue
            prefix = f"10.{a}.{b}"
            f = SUBNET_LOCKS / f"{prefix}.lock"
            try:
                fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            return cls(cidr=f"{prefix}.0/24", prefix=prefix, file=f)
        raise RuntimeError("no free test subnet under 10.140.0.0-10.149.255.0")

    def release(self) -> None:
        # The lock dir stays: other harnesses may be about to create a lock in it.
        self.file.unlink(missing_ok=True)


# ------------------------------------------------------------------ daemon


@dataclass
class Daemon:
    bin: Path
    root: Path
    api_port: int
    gw_port: int
    subnet: SubnetLease
    proc: Optional[subprocess.Popen] = None
    token: str = ""
    bridge: Optional[str] = None
    veths: List[str] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def gateway(self) -> str:
        return f"127.0.0.1:{self.gw_port}"

    def log(self) -> str:
        try:
            return (self.root / "daemon.log").read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> None:
        log = open(self.root / "daemon.log", "ab")
        env = {k: v for k, v in os.environ.items() if k not in ("COVE_API_URL", "COVE_TOKEN")}
        env.update(COVE_LOG="info", NO_COLOR="1")
        self.proc = subprocess.Popen(
            [str(self.bin), "server", "--data-dir", str(self.data_dir),
             "--api-listen", f"127.0.0.1:{self.api_port}",
             "--gateway-listen", f"127.0.0.1:{self.gw_port}",
             "--subnet", self.subnet.cidr, "--stop-grace-seconds", "2"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
        )
        log.close()

        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"cove server exited ({self.proc.returncode}):\n{self.log()}")
            try:
                with urllib.request.urlopen(self.api_url + "/v1/health", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_until("cove server to answer /v1/health", 60, healthy)
        wait_until("`cove daemon ready` in the log", 10, lambda: "cove daemon ready" in self.log())
        self.token = (self.data_dir / "token").read_text().strip()
        self.bridge = self._find_bridge()

    def api(self, method: str, path: str) -> object:
        req = urllib.request.Request(self.api_url + path, method=method,
                                     headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def containers(self, all: bool = False) -> List[dict]:
        return self.api("GET", "/v1/containers" + ("?all=true" if all else ""))  # type: ignore[return-value]

    def _find_bridge(self) -> Optional[str]:
        o = run(["ip", "-o", "-4", "addr", "show"])
        for line in o.stdout.splitlines():
            if f" inet {self.subnet.prefix}.1/" in line:
                return line.split()[1]
        return None

    def note_veths(self) -> None:
        self.bridge = self.bridge or self._find_bridge()
        if not self.bridge:
            return
        o = run(["ip", "-o", "link", "show", "master", self.bridge])
        for line in o.stdout.splitlines():
            name = line.split(": ")[1].split("@")[0]
            if name not in self.veths:
                self.veths.append(name)

    def mounts(self) -> List[str]:
        dd = str(self.data_dir)
        return [l.split()[1] for l in Path("/proc/mounts").read_text().splitlines() if l.split()[1].startswith(dd)]

    def teardown(self) -> List[str]:
        problems: List[str] = []
        if self.proc is not None and self.proc.poll() is None:
            self.note_veths()
            try:
                paths = self.api("GET", "/v1/openapi.json")["paths"]  # type: ignore[index]
                if "/v1/deployments" in paths:
                    for dep in self.api("GET", "/v1/deployments") or []:  # type: ignore[union-attr]
                        self.api("DELETE", f"/v1/deployments/{dep['name']}")
            except (OSError, KeyError, TypeError) as e:
                problems.append(f"deleting deployments: {e}")
            try:
                for c in self.containers():
                    try:
                        self.api("POST", f"/v1/containers/{c['id']}/stop")
                    except OSError as e:
                        problems.append(f"stopping {c['id']}: {e}")
                wait_until("every container to end", 30, lambda: not self.containers() or None)
            except (OSError, AssertionError) as e:
                problems.append(f"stopping containers: {e}")
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(30)
                if rc != 0:
                    problems.append(f"cove server exited with {rc} on SIGTERM")
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append("cove server ignored SIGTERM for 30 s")
        for m in self.mounts():
            problems.append(f"mount left: {m}")
        netns = self.data_dir / "netns"
        if netns.is_dir():
            problems.extend(f"netns file left: {n}" for n in os.listdir(netns))
        for v in self.veths:
            if run(["ip", "link", "show", v]).returncode == 0:
                problems.append(f"veth left: {v}")
        if self.bridge and run(["ip", "link", "show", self.bridge]).returncode == 0:
            problems.append(f"bridge left: {self.bridge}")
        if self.bridge:
            table = "cove_" + self.bridge[len("cove"):]
            if table in run(["nft", "list", "tables"]).stdout.split():
                problems.append(f"nftables table left: {table}")
        return problems

    def force_clean(self) -> None:
        for m in sorted(self.mounts(), key=len, reverse=True):
            run(["umount", "-l", m])
        for v in self.veths:
            run(["ip", "link", "del", v])
        if self.bridge:
            run(["ip", "link", "del", self.bridge])
            run(["nft", "delete", "table", "inet", "cove_" + self.bridge[len("cove"):]])


@pytest.fixture(scope="session")
def daemon(cove_bin: Path, registry: Registry) -> Iterator[Daemon]:
    root = Path(tempfile.mkdtemp(prefix="cove-test-sdk-", dir="/tmp"))
    d = Daemon(bin=cove_bin, root=root, api_port=free_port(), gw_port=free_port(), subnet=SubnetLease.take())
    saved = {k: os.environ.get(k) for k in ("COVE_API_URL", "COVE_TOKEN", "COVE_DATA_DIR", "COVE_DEFAULT_IMAGE")}
    problems: List[str] = []
    try:
        d.start()
        os.environ["COVE_API_URL"] = d.api_url
        os.environ["COVE_TOKEN"] = d.token
        os.environ["COVE_DATA_DIR"] = str(d.data_dir)
        os.environ.pop("COVE_DEFAULT_IMAGE", None)
        yield d
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        problems = d.teardown()
        log = d.log()
        if problems:
            d.force_clean()
        d.subnet.release()
        if not problems or not os.environ.get("COVE_TEST_KEEP"):
            shutil.rmtree(root, ignore_errors=True)
    if problems:
        tail = "\n".join(log.splitlines()[-60:])
        pytest.fail("left behind by the daemon:\n  " + "\n  ".join(problems) + "\n--- daemon log (tail)\n" + tail)


@pytest.fixture
def busybox(registry: Registry) -> str:
    """The busybox test image reference (entrypoint: httpd on :8000 serving /www)."""
    return registry.image("busybox:latest")


HTTPD = ["httpd", "-f", "-p", "8000", "-h", "/www"]


@pytest.fixture
def httpd_entrypoint() -> List[str]:
    return list(HTTPD)


# ------------------------------------------------------------------ python images

PYTHON_IMAGE_SCRIPT = Path(__file__).parent / "images" / "build-python-image.sh"


@pytest.fixture(scope="session")
def python_image_layout() -> Path:
    """The Debian python3 image layout (tag ``latest``; ``<it>-notebook`` has tag ``notebook``);
    skips the test when the Debian mirror is unreachable (the script exits 75)."""
    out = TARGET_TMP / "cove-python-image"
    o = _locked_build("cove-python-image.lock", ["bash", str(PYTHON_IMAGE_SCRIPT), str(out)])
    if o.returncode == 75:
        pytest.skip(f"the Debian mirror is unreachable, no python test image: {o.stderr.strip()[-300:]}")
    assert o.returncode == 0, f"build-python-image.sh failed:\n{o.stdout}\n{o.stderr}"
    return out


@pytest.fixture(scope="session")
def python_image(registry: Registry, python_image_layout: Path) -> str:
    """Debian bookworm minbase with python3 (and ``python``), in the test registry."""
    return registry.push_layout(python_image_layout, "latest", "python:bookworm")


@pytest.fixture(scope="session")
def notebook_image(registry: Registry, python_image_layout: Path) -> str:
    """The python image plus a ``start-notebook.py`` stand-in serving :8888 (entrypoint)."""
    layout = python_image_layout.with_name(python_image_layout.name + "-notebook")
    return registry.push_layout(layout, "notebook", "base-notebook:latest")
