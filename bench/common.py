"""Helpers shared by the benchmark's modules."""
import http.client, os, socket, statistics, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COVE = os.path.join(ROOT, "target", "release", "cove")
POLL = 0.002


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, host=None, path="/", timeout=1.0):
    """Status of one GET, or None if the connection failed."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path, headers={"Host": host} if host else {})
        r = c.getresponse()
        r.read()
        c.close()
        return r.status
    except OSError:
        return None


def wait_200(port, host=None, limit=30.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if get(port, host) == 200:
            return True
        time.sleep(POLL)
    return False


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    f = int(k)
    return xs[f] + (xs[min(f + 1, len(xs) - 1)] - xs[f]) * (k - f)


def summary(xs):
    return {"n": len(xs), "p50_ms": round(pct(xs, 50), 1), "p90_ms": round(pct(xs, 90), 1),
            "p99_ms": round(pct(xs, 99), 1), "mean_ms": round(statistics.mean(xs), 1)}


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
