"""Gateway overhead: the same pod server measured through the gateway and straight at the
pod's address, in one run. The pod runs `cove-bench-server` (bench/server: keep-alive HTTP,
a streamed download, a WebSocket echo), so what is measured is the gateway, not a
fork-per-request server.
"""
import base64, json, os, re, shutil, socket, struct, subprocess, time

from common import COVE, ROOT, free_port, pct, rss_kb, wait_200

SERVER_TARGET = os.path.join(ROOT, "target", "bench-server-target")


def build_server(work):
    """Builds the static bench server (its own target dir) into `work/server-app/`."""
    triple = f"{os.uname().machine}-unknown-linux-gnu"
    env = dict(os.environ, RUSTFLAGS="-C target-feature=+crt-static")
    env.pop("CARGO_TARGET_DIR", None)
    subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "cove-bench-server",
                    "--target", triple, "--target-dir", SERVER_TARGET], cwd=ROOT, env=env, check=True)
    app = os.path.join(work, "server-app")
    os.makedirs(app, exist_ok=True)
    shutil.copy(os.path.join(SERVER_TARGET, triple, "release", "cove-bench-server"), app)
    return app


def start_server_pod(env, app):
    """A pod running the bench server on port 8000 (synced to /app); returns its container."""
    c = json.loads(env.cove("run", "--image", env.image, "--sync", app, "--ports", "8000",
                            "--keep-warm-seconds", "-1", "--cpu", "1", "--memory", "256",
                            "--format", "json", "--entrypoint", "/app/cove-bench-server 8000"))
    host = f"{c['stub_id']}-8000.localhost"
    if not wait_200(env.gw_port, host):
        raise SystemExit(f"bench server pod {c['id']} never answered")
    return c, host


def wrk(url, conns, seconds, host=None):
    """Requests/s and latency percentiles (ms) from one wrk run."""
    cmd = ["wrk", "-t", str(min(conns, 2)), "-c", str(conns), "-d", f"{seconds}s", "--latency", url]
    if host:
        cmd[1:1] = ["-H", f"Host: {host}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}

    def ms(text):
        m = re.match(r"([\d.]+)(us|ms|s)", text)
        return float(m.group(1)) * unit[m.group(2)] if m else None

    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50_ms": ms(lat.get("50", "")), "p99_ms": ms(lat.get("99", "")),
            "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1).strip() if socket_errors else ""}


NGINX_CONF = """worker_processes auto;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream pod {{ server {upstream}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://pod; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
}}
"""


class Nginx:
    """nginx as a reverse proxy in front of the same pod: a reference for what a mature proxy
    (C, one worker per core, keep-alive upstreams) gets on this machine. None if not installed."""

    def __init__(self, work, upstream):
        self.conf = os.path.join(work, "nginx.conf")
        self.port = free_port()
        with open(self.conf, "w") as f:
            f.write(NGINX_CONF.format(work=work, upstream=upstream, port=self.port))
        subprocess.run(["nginx", "-c", self.conf], check=True, capture_output=True)
        if not wait_200(self.port):
            self.close()
            raise SystemExit("nginx never answered")

    def close(self):
        subprocess.run(["nginx", "-c", self.conf, "-s", "stop"], capture_output=True)


def bench_wrk(env, c, host, seconds=5):
    """wrk through the gateway, through nginx (a reference proxy) and straight to the pod, at
    1, 64 and 256 connections."""
    if not shutil.which("wrk"):
        return {"error": "wrk not installed"}
    nginx = Nginx(env.work, f"{c['address']}:8000") if shutil.which("nginx") else None
    out = {}
    try:
        for conns in (1, 64, 256):
            direct = wrk(f"http://{c['address']}:8000/", conns, seconds)
            via = wrk(f"http://127.0.0.1:{env.gw_port}/", conns, seconds, host=host)
            out[str(conns)] = {"direct": direct, "gateway": via,
                               "rps_ratio": round(via["rps"] / direct["rps"], 2) if direct["rps"] else None,
                               "added_p50_ms": round(via["p50_ms"] - direct["p50_ms"], 3),
                               "added_p99_ms": round(via["p99_ms"] - direct["p99_ms"], 3)}
            if nginx:
                ref = wrk(f"http://127.0.0.1:{nginx.port}/", conns, seconds)
                out[str(conns)].update({
                    "nginx": ref, "nginx_rps_ratio": round(ref["rps"] / direct["rps"], 2) if direct["rps"] else None,
                    "nginx_added_p99_ms": round(ref["p99_ms"] - direct["p99_ms"], 3),
                    "gateway_vs_nginx_rps": round(via["rps"] / ref["rps"], 2) if ref["rps"] else None})
    finally:
        if nginx:
            nginx.close()
    return out


class WebSocket:
    """A minimal RFC 6455 client: binary messages, masked as a client must."""

    def __init__(self, addr, host, path="/ws"):
        self.s = socket.create_connection(addr, timeout=10)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.s.recv(4096)
            if not chunk:
                raise SystemExit("websocket handshake: connection closed")
            head += chunk
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise SystemExit(f"websocket handshake failed: {head[:200]!r}")

    def roundtrip(self, msg):
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(msg))
        self.s.sendall(bytes([0x82, 0x80 | len(msg)]) + mask + body)
        want = 2 + len(msg)
        got = b""
        while len(got) < want:
            chunk = self.s.recv(want - len(got))
            if not chunk:
                raise SystemExit("websocket closed mid-echo")
            got += chunk
        if got[2:] != msg:
            raise SystemExit("websocket echo differs")

    def close(self):
        self.s.close()


def bench_websocket(env, c, host, rounds=2000):
    """Echo round trips of a 32-byte message on one WebSocket, via the gateway and direct."""
    msg = b"cove-bench-websocket-echo-000032"
    out = {}
    for name, addr, h in (("direct", (c["address"], 8000), f"{c['address']}:8000"),
                          ("gateway", ("127.0.0.1", env.gw_port), host)):
        ws = WebSocket(addr, h)
        for _ in range(100):
            ws.roundtrip(msg)
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            ws.roundtrip(msg)
            times.append((time.perf_counter() - t0) * 1000)
        ws.close()
        out[name] = {"rounds": rounds, "p50_ms": round(pct(times, 50), 3),
                     "p99_ms": round(pct(times, 99), 3)}
    out["added_p50_ms"] = round(out["gateway"]["p50_ms"] - out["direct"]["p50_ms"], 3)
    out["p50_ratio"] = round(out["gateway"]["p50_ms"] / out["direct"]["p50_ms"], 2)
    return out


def download(url, host=None):
    cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", url]
    if host:
        cmd[1:1] = ["-H", f"Host: {host}"]
    code, size, secs = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
    if code != "200":
        raise SystemExit(f"download {url} answered {code}")
    return int(size), float(secs)


def bench_stream(env, c, host, size=1 << 30):
    """A 1 GiB streamed download via the gateway and direct (alternated, 3 each), and the
    daemon's RSS before and after (streaming must not grow it)."""
    before = rss_kb(env.daemon.pid)
    path = f"/bytes/{size}"
    rates = {"direct": [], "gateway": []}
    for _ in range(3):
        for name, url, h in (("direct", f"http://{c['address']}:8000{path}", None),
                             ("gateway", f"http://127.0.0.1:{env.gw_port}{path}", host)):
            got, secs = download(url, h)
            if got != size:
                raise SystemExit(f"{name} download got {got} of {size} bytes")
            rates[name].append(got / secs / 1e6)
    after = rss_kb(env.daemon.pid)
    best = {k: round(max(v), 1) for k, v in rates.items()}
    return {"bytes": size, "direct_mb_s": best["direct"], "gateway_mb_s": best["gateway"],
            "throughput_ratio": round(best["gateway"] / best["direct"], 2),
            "daemon_rss_before_mb": round(before / 1024, 1), "daemon_rss_after_mb": round(after / 1024, 1)}


def bench_gateway(env):
    app = build_server(env.work)
    c, host = start_server_pod(env, app)
    try:
        return {"server": "cove-bench-server (keep-alive, static, 1 core)",
                "wrk": bench_wrk(env, c, host), "websocket": bench_websocket(env, c, host),
                "stream": bench_stream(env, c, host)}
    finally:
        env.cove("container", "stop", c["id"])
