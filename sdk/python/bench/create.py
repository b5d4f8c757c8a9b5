"""Benchmark: ``Pod.create()`` (SDK, in-process) against ``cove run`` (CLI) on a cached image.

Starts its own daemon and registry (the test harness's, tests/conftest.py), then alternates
SDK and CLI creates of the busybox httpd pod, stopping each pod after it is measured, and
prints the median and p90 wall times of both and their difference.

    target/sdk-venv/bin/python sdk/python/bench/create.py [--runs 20] [--cove target/release/cove]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import (  # noqa: E402
    HTTPD, REPO, SCRIPTS, TARGET_TMP, Daemon, SubnetLease, _locked_build, free_port, run,
)

from cove import Client, Config, Pod  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--cove", default=str(REPO / "target" / "debug" / "cove"))
    args = ap.parse_args()

    layout = TARGET_TMP / "cove-test-image"
    assert _locked_build("cove-test-image.lock", ["bash", str(SCRIPTS / "build-test-image.sh"), str(layout)]).returncode == 0
    reg_dir = Path(tempfile.mkdtemp(prefix="cove-test-sdk-bench-registry-", dir="/tmp"))
    port = free_port()
    d = Daemon(bin=Path(args.cove), root=Path(tempfile.mkdtemp(prefix="cove-test-sdk-bench-", dir="/tmp")),
               api_port=free_port(), gw_port=free_port(), subnet=SubnetLease.take())
    try:
        assert run(["bash", str(SCRIPTS / "registry.sh"), "start", str(port), str(reg_dir)]).returncode == 0
        assert run(["bash", str(SCRIPTS / "registry.sh"), "push", str(layout), str(port)]).returncode == 0
        image = f"127.0.0.1:{port}/busybox:latest"
        d.start()
        client = Client(Config(api_url=d.api_url, token=d.token))
        env = dict(os.environ, COVE_API_URL=d.api_url, COVE_TOKEN=d.token)
        cli = [args.cove, "run", "--image", image, "--ports", "8000", "--entrypoint", " ".join(HTTPD), "--format", "json"]
        # Warm up: pull the image once, and one create of each kind.
        sdk_t, cli_t = [], []
        for i in range(args.runs + 1):
            t0 = time.perf_counter()
            inst = Pod(image=image, ports=[8000], entrypoint=HTTPD, client=client).create(quiet=True)
            t1 = time.perf_counter()
            assert inst.ok, inst.error_msg
            inst.terminate()
            t2 = time.perf_counter()
            o = subprocess.run(cli, env=env, capture_output=True, text=True)
            t3 = time.perf_counter()
            assert o.returncode == 0, o.stderr
            d.api("POST", f"/v1/containers/{json.loads(o.stdout)['id']}/stop")
            if i > 0:
                sdk_t.append((t1 - t0) * 1000)
                cli_t.append((t3 - t2) * 1000)

        def summary(xs: list) -> str:
            xs = sorted(xs)
            return f"median {statistics.median(xs):7.1f} ms  p90 {xs[int(len(xs) * 0.9) - 1]:7.1f} ms"

        print(f"runs: {args.runs} each, cached image, busybox httpd pod, binary {args.cove}")
        print(f"SDK Pod.create()  {summary(sdk_t)}")
        print(f"CLI cove run      {summary(cli_t)}")
        print(f"SDK - CLI median  {statistics.median(sdk_t) - statistics.median(cli_t):+7.1f} ms")
    finally:
        problems = d.teardown()
        if problems:
            d.force_clean()
            print("left behind:", problems, file=sys.stderr)
        d.subnet.release()
        shutil.rmtree(d.root, ignore_errors=True)
        run(["bash", str(SCRIPTS / "registry.sh"), "stop", str(reg_dir)])
        shutil.rmtree(reg_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
