#!/usr/bin/env python3
"""Cove's benchmark (issue 5's suite), run by `bash bench/run.sh`: pod create to first byte
against bare runc and podman, a 50-pod burst, wake from zero, the gateway against direct
(wrk, WebSocket round trips, a 1 GiB stream), density with idle pods, image pull + unpack
against skopeo + tar, and a cached build's lookup. Writes bench/results.json, bench/report.md
and bench/plot.svg.

Every figure comes from this one run on this machine; ratios are what to
compare (absolute times drift on a noisy 2-core machine).
"""
import argparse, http.client, json, os, shutil, signal, subprocess, sys, tempfile, time

from common import COVE, ROOT, get, pct, rss_kb, summary, wait_200, free_port
import gateway, images, report


class Env:
    """A registry with the test image and a cove daemon of the benchmark's own."""

    def __init__(self, work, daemon_args=()):
        self.work = work
        self.layout = os.path.join(work, "image")
        subprocess.run(["bash", os.path.join(ROOT, "scripts", "build-test-image.sh"), self.layout], check=True)
        self.reg_port = free_port()
        regdir = os.path.join(work, "registry")
        os.makedirs(regdir)
        cfg = os.path.join(work, "registry.yml")
        with open(cfg, "w") as f:
            f.write(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {regdir}\n"
                    f"http:\n  addr: 127.0.0.1:{self.reg_port}\nlog:\n  level: error\n")
        self.registry = subprocess.Popen(["docker-registry", "serve", cfg], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        self.image = f"127.0.0.1:{self.reg_port}/busybox:latest"
        for _ in range(200):
            if get(self.reg_port, path="/v2/") == 200:
                break
            time.sleep(0.05)
        subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{self.layout}:latest",
                        f"docker://{self.image}"], check=True)
        self.api_port, self.gw_port = free_port(), free_port()
        self.data = os.path.join(work, "cove")
        self.env = dict(os.environ, COVE_API_URL=f"http://127.0.0.1:{self.api_port}", COVE_DATA_DIR=self.data)
        self.daemon = subprocess.Popen(
            [COVE, "server", "--data-dir", self.data, "--api-listen", f"127.0.0.1:{self.api_port}",
             "--gateway-listen", f"127.0.0.1:{self.gw_port}", "--subnet", "10.213.0.0/16",
             "--stop-grace-seconds", "2", *daemon_args],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "daemon.log"), "w"))
        for _ in range(400):
            if get(self.api_port, path="/v1/health") == 200:
                break
            time.sleep(0.05)
        self.rss_at_start_kb = rss_kb(self.daemon.pid)
        self.cove("image", "pull", self.image)

    def cove(self, *args):
        return subprocess.run([COVE, *args], env=self.env, check=True, capture_output=True, text=True).stdout

    def close(self):
        ids = json.loads(self.cove("container", "list", "--format", "json"))
        if ids:
            self.cove("container", "stop", *[c["id"] for c in ids])
        self.daemon.send_signal(signal.SIGTERM)
        self.daemon.wait(30)
        self.registry.terminate()
        self.registry.wait(10)


def bench_cove(env, runs):
    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        out = env.cove("run", "--image", env.image, "--ports", "8000", "--keep-warm-seconds", "-1",
                       "--format", "json", "--entrypoint", "httpd -f -p 8000 -h /www")
        c = json.loads(out)
        host = f"{c['stub_id']}-8000.localhost"
        if not wait_200(env.gw_port, host):
            raise SystemExit(f"pod {c['id']} never answered")
        times.append((time.monotonic() - t0) * 1000)
        env.cove("container", "stop", c["id"])
    return times


def bench_cove_api(env, runs):
    """Like bench_cove, from the API call itself (what the SDK sends): one POST /v1/pods on a
    fresh connection, then the same polling through the gateway."""
    token = open(os.path.join(env.data, "token")).read().strip()
    body = json.dumps({"image": env.image, "ports": [8000], "keep_warm_seconds": -1,
                       "entrypoint": ["httpd", "-f", "-p", "8000", "-h", "/www"]})
    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", env.api_port, timeout=30)
        conn.request("POST", "/v1/pods", body, {"Content-Type": "application/json",
                                                 "Authorization": f"Bearer {token}"})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        if r.status != 201:
            raise SystemExit(f"POST /v1/pods answered {r.status}: {data[:200]!r}")
        c = json.loads(data)["container"]
        if not wait_200(env.gw_port, f"{c['stub_id']}-8000.localhost"):
            raise SystemExit(f"pod {c['id']} never answered")
        times.append((time.monotonic() - t0) * 1000)
        env.cove("container", "stop", c["id"])
    return times


def bench_wake(env, runs):
    """A deployment scaled to zero: one GET to its URL until the answer (the
    gateway holds it while a container starts), `runs` times."""
    manifest = os.path.join(env.work, "wake.toml")
    with open(manifest, "w") as f:
        f.write(f'name = "bench-wake"\nimage = "{env.image}"\nports = [8000]\n'
                f'keep_warm_seconds = 1\nentrypoint = "httpd -f -p 8000 -h /www"\n')
    d = json.loads(env.cove("deploy", manifest, "--format", "json"))
    host = f"{d['url_key']}-8000.localhost"
    times = []
    try:
        for _ in range(runs):
            end = time.monotonic() + 60
            # Asleep, and the last container's cleanup done (it no longer lists as live).
            while any(c.get("deployment_id") == d["id"]
                      for c in json.loads(env.cove("container", "list", "--format", "json"))):
                if time.monotonic() > end:
                    raise SystemExit("the deployment never went to sleep")
                time.sleep(0.05)
            t0 = time.monotonic()
            status = get(env.gw_port, host, timeout=30.0)
            if status != 200:
                raise SystemExit(f"waking the deployment answered {status}")
            times.append((time.monotonic() - t0) * 1000)
    finally:
        env.cove("deployment", "delete", "bench-wake")
    return times


def bench_runc(env, runs):
    bundle = os.path.join(env.work, "bundle")
    if os.path.exists(bundle):
        shutil.rmtree(bundle)
    r = subprocess.run(["umoci", "unpack", "--image", f"{env.layout}:latest", bundle],
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"umoci unpack failed: {r.stderr.strip()}")
    port = free_port()
    cfg_path = os.path.join(bundle, "config.json")
    cfg = json.load(open(cfg_path))
    cfg["process"]["args"] = ["httpd", "-f", "-p", str(port), "-h", "/www"]
    cfg["process"]["terminal"] = False
    # Host network: the floor has no network setup at all.
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
    json.dump(cfg, open(cfg_path, "w"))
    root = os.path.join(env.work, "runc-root")
    times = []
    for i in range(runs):
        cid = f"bench-floor-{os.getpid()}-{i}"
        t0 = time.monotonic()
        subprocess.run(["runc", "--root", root, "run", "-d", "--bundle", bundle, cid], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_200(port):
            raise SystemExit("bare runc container never answered")
        times.append((time.monotonic() - t0) * 1000)
        subprocess.run(["runc", "--root", root, "delete", "-f", cid], check=True)
    return times


def bench_podman(env, runs):
    if not shutil.which("podman"):
        return None, "podman not installed"
    pull = subprocess.run(["podman", "pull", "-q", "--tls-verify=false", f"docker://{env.image}"],
                          capture_output=True, text=True)
    if pull.returncode:
        return None, pull.stderr.strip().splitlines()[-1:]
    times = []
    for _ in range(runs):
        port = free_port()
        t0 = time.monotonic()
        # Podman's default rlimits exceed this host's hard limits (runc then
        # fails with "error setting rlimit"): give it ones the host allows.
        r = subprocess.run(["podman", "run", "-d", "--rm", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "-p",
                            f"127.0.0.1:{port}:8000", env.image, "httpd", "-f", "-p", "8000", "-h", "/www"],
                           capture_output=True, text=True)
        if r.returncode:
            return None, r.stderr.strip().splitlines()[-1:]
        cid = r.stdout.strip()
        ok = wait_200(port)
        times.append((time.monotonic() - t0) * 1000)
        subprocess.run(["podman", "rm", "-f", "-t", "0", cid], capture_output=True)
        if not ok:
            return None, "podman container never answered"
    subprocess.run(["podman", "rmi", "-f", env.image], capture_output=True)
    return times, None


def bench_burst(env, pods):
    """`pods` creates at once (one `cove run` each, in parallel); time until all answer."""
    import concurrent.futures as cf

    def one(_):
        t0 = time.monotonic()
        r = subprocess.run([COVE, "run", "--image", env.image, "--ports", "8000", "--keep-warm-seconds", "-1",
                            "--format", "json", "--entrypoint", "httpd -f -p 8000 -h /www"],
                           env=env.env, capture_output=True, text=True)
        if r.returncode:
            return None, r.stderr.strip()
        c = json.loads(r.stdout)
        ok = wait_200(env.gw_port, f"{c['stub_id']}-8000.localhost", limit=60)
        return (c["id"], (time.monotonic() - t0) * 1000) if ok else (c["id"], None)

    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(max_workers=pods) as ex:
        results = list(ex.map(one, range(pods)))
    total_ms = (time.monotonic() - t0) * 1000
    ids = [cid for cid, _ in results if cid]
    failures = [r for r in results if not isinstance(r[1], float)]
    if ids:
        env.cove("container", "stop", *ids)
    return {"pods": pods, "all_answered_ms": round(total_ms, 1), "failures": len(failures),
            "first_errors": [f[1] for f in failures if isinstance(f[1], str)][:3]}


def shim_pids(data_dir):
    """The shims of the benchmark's own daemon (their command line names its data dir)."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if len(cmd) > 1 and cmd[1] == b"shim" and any(data_dir.encode() in a for a in cmd):
                out.append(int(pid))
    return out


def bench_density(env, pods):
    """`pods` idle pods: the daemon's RSS, each pod's memory outside its own processes
    (its shim plus its share of the daemon's growth), listing and stopping them all."""
    idle_kb = rss_kb(env.daemon.pid)
    ids = []
    for _ in range(pods):
        c = json.loads(env.cove("run", "--image", env.image, "--keep-warm-seconds", "-1", "--format", "json",
                                "--entrypoint", "sleep 1000000"))
        ids.append(c["id"])
    time.sleep(1)
    busy_kb = rss_kb(env.daemon.pid)
    shims = [rss_kb(p) for p in shim_pids(env.data)]
    t0 = time.monotonic()
    env.cove("container", "list")
    list_ms = (time.monotonic() - t0) * 1000
    t0 = time.monotonic()
    env.cove("container", "stop", *ids)
    stop_s = time.monotonic() - t0
    shim_mean_kb = sum(shims) / len(shims) if shims else 0
    per_pod_kb = (busy_kb - idle_kb) / pods + shim_mean_kb
    return {"pods": pods, "daemon_rss_at_start_mb": round(env.rss_at_start_kb / 1024, 1),
            "daemon_rss_idle_mb": round(idle_kb / 1024, 1),
            "daemon_rss_with_pods_mb": round(busy_kb / 1024, 1),
            "shim_rss_max_mb": round(max(shims) / 1024, 2) if shims else None, "shims": len(shims),
            "per_pod_outside_container_mb": round(per_pod_kb / 1024, 2),
            "list_ms": round(list_ms, 1), "stop_all_s": round(stop_s, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--pods", type=int, default=200)
    ap.add_argument("--burst", type=int, default=50)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results.json"))
    ap.add_argument("--only-create", action="store_true",
                    help="only benchmark 1 (create to first byte); print it, write nothing")
    ap.add_argument("--daemon-arg", action="append", default=[],
                    help="an extra `cove server` argument (repeatable), e.g. --daemon-arg=--default-disk=off")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="cove-bench-")
    env = Env(work, a.daemon_arg)
    res = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release}, "runs": a.runs}
    try:
        bench_cove(env, 2)  # warm caches (page cache, binaries) for every contender alike
        bench_runc(env, 2)
        # Alternate the two, one run at a time, so drift on this noisy
        # machine falls on both alike.
        cove, api, floor = [], [], []
        for _ in range(a.runs):
            cove += bench_cove(env, 1)
            api += bench_cove_api(env, 1)
            floor += bench_runc(env, 1)
        res["cove_run"] = summary(cove)
        res["cove_api"] = summary(api)
        res["bare_runc"] = summary(floor)
        if a.only_create:
            for k in ("cove_api", "cove_run", "bare_runc"):
                print(k, json.dumps(res[k]))
            print("cove_api / bare_runc p50:", round(res["cove_api"]["p50_ms"] / res["bare_runc"]["p50_ms"], 2))
            return
        res["deployment_wake"] = summary(bench_wake(env, a.runs))
        pt, perr = bench_podman(env, a.runs)
        res["podman"] = summary(pt) if pt else {"error": str(perr)}
        res["burst"] = bench_burst(env, a.burst)
        res["gateway"] = gateway.bench_gateway(env)
        res["density"] = bench_density(env, a.pods)
        res["images"] = {"pull": images.bench_pull(env), "cached_build": images.bench_cached_build(env)}
    finally:
        env.close()
        if os.environ.get("COVE_BENCH_KEEP"):
            print(f"kept {work} (daemon.log: the daemon's log)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    c, cli, f = res["cove_api"]["p50_ms"], res["cove_run"]["p50_ms"], res["bare_runc"]["p50_ms"]
    res["ratios"] = {"cove_api_vs_bare_runc_p50": round(c / f, 2),
                     "cove_run_vs_bare_runc_p50": round(cli / f, 2),
                     "cove_api_p99_vs_own_p50": round(res["cove_api"]["p99_ms"] / c, 2),
                     "wake_minus_cove_api_p50_ms": round(res["deployment_wake"]["p50_ms"] - c, 1)}
    if "p50_ms" in res["podman"]:
        res["ratios"]["cove_run_vs_podman_p50"] = round(cli / res["podman"]["p50_ms"], 2)
    json.dump(res, open(a.out, "w"), indent=2)
    report.write(res, os.path.join(ROOT, "bench"))
    print(json.dumps(res["ratios"], indent=2))


if __name__ == "__main__":
    main()
