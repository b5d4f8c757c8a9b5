"""Pods through the SDK against a real daemon: create, serve, env, logs, terminate, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest

import cove
from cove import (
    Client,
    Config,
    CoveAPIError,
    CoveBadRequestError,
    CoveConnectionError,
    CoveError,
    Image,
    Pod,
)

from conftest import HTTPD, free_port, http_get, wait_until


def serving(daemon, url: str, path: str = "/") -> str:
    """Waits until ``url`` answers 200 through the gateway; returns the body."""
    last = []

    def ok():
        try:
            status, body = http_get(url.rstrip("/") + path, daemon.gateway)
        except OSError as e:
            last[:] = [str(e)]
            return None
        last[:] = [f"{status} {body[:200]}"]
        return body if status == 200 else None

    try:
        return wait_until(f"{url} to answer 200", 30, ok)
    except AssertionError:
        raise AssertionError(f"{url}{path} never answered 200: last {last}\n{daemon.log()[-3000:]}")


def test_create_serves_url_and_streams_progress(daemon, busybox, capsys):
    pod = Pod(
        image=Image(base_image=busybox),
        ports=[8000],
        cpu="500m",
        memory="64Mi",
        entrypoint=HTTPD,
        keep_warm_seconds=120,
    )
    arrivals: List[tuple] = []
    inst = pod.create(on_progress=lambda m: arrivals.append((m, time.time() * 1000)))
    assert inst.ok, inst.error_msg
    daemon.note_veths()
    assert inst.container_id.startswith("pod-")
    assert inst.url == inst.urls[8000]
    assert inst.url.startswith("http://") and f"-8000.localhost:{daemon.gw_port}" in inst.url
    assert "Hello from a Cove pod" in serving(daemon, inst.url)
    assert inst.status() == "RUNNING"

    msgs = [m for m, _ in arrivals]
    assert "Creating container" in msgs
    assert msgs[-1] == f"Container created successfully ===> {inst.container_id}"
    # Streamed: "Creating container" reached us before the container had even started.
    creating_at = dict(arrivals)["Creating container"]
    assert creating_at <= inst.container["started_at"] + 1, (arrivals, inst.container)
    assert pod.terminate()

    # The printed form, in order, as the guide shows it (image now cached).
    inst2 = Pod(image=busybox, ports=[8000], entrypoint=HTTPD).create()
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "=> Using cached image",
        "=> Creating container",
        f"=> Container created successfully ===> {inst2.container_id}",
    ], out
    assert inst2.terminate()


def test_guide_snippets_via_beam_env_and_logs(daemon, busybox, capsys):
    from beam import Image as BeamImage, Pod as BeamPod

    assert BeamPod is Pod and BeamImage is Image
    notebook = BeamPod(
        image=BeamImage(base_image=busybox),
        ports=[8888],
        cpu=1,
        memory=1024,
        env={"NOTEBOOK_ARGS": "--ip='' --NotebookApp.token='' --NotebookApp.notebook_dir=/tmp"},
        entrypoint=["sh", "-c", 'echo "args=$NOTEBOOK_ARGS"; exec httpd -f -p 8888 -h /www'],
    )
    nb = notebook.create()
    print("✨ Container hosted at:", nb.url)
    out = capsys.readouterr().out
    assert f"✨ Container hosted at: {nb.url}" in out
    assert nb.ok and nb.url.endswith(f"-8888.localhost:{daemon.gw_port}")
    serving(daemon, nb.url)
    logs = wait_until("the env line in the logs", 10, lambda: "args=" in nb.logs() and nb.logs())
    assert "args=--ip='' --NotebookApp.token='' --NotebookApp.notebook_dir=/tmp" in logs
    assert nb.container["cpu_millis"] == 1000 and nb.container["memory_mib"] == 1024
    r = nb.exec("sh", "-c", "echo $NOTEBOOK_ARGS")
    assert r["exit_code"] == 0 and "NotebookApp.token" in r["stdout"]
    assert notebook.terminate()
    assert nb.status() == "STOPPED"


def test_terminate_like_the_guide(daemon, busybox, monkeypatch):
    # The guide's `notebook = Pod()`: the image comes from COVE_DEFAULT_IMAGE.
    monkeypatch.setenv("COVE_DEFAULT_IMAGE", busybox)
    notebook = Pod()
    assert notebook.terminate() is False  # nothing created yet
    inst = notebook.create()
    assert inst.ok, inst.error_msg
    assert inst.url == "" and inst.urls == {}
    assert inst.status() == "RUNNING"
    assert notebook.terminate() is True
    assert inst.status() == "STOPPED"
    c = inst.inspect()
    assert c["reason"] == "stopped by user"
    # Terminating again is harmless.
    assert notebook.terminate() is True


def test_pod_without_image_is_a_clear_error(daemon):
    with pytest.raises(CoveError, match="a pod needs an image"):
        Pod().create()


@pytest.mark.parametrize(
    "kwargs, needle, error_cls",
    [
        ({"ports": [0]}, "port", CoveBadRequestError),
        ({"cpu": "lots"}, "cpu", CoveBadRequestError),
        ({"memory": "lots"}, "memory", CoveBadRequestError),
        ({"ports": [8000, 8000]}, "8000", CoveBadRequestError),
        ({"isolation": "kata"}, "isolation", CoveBadRequestError),
    ],
)
def test_bad_input_is_ok_false_and_creates_nothing(daemon, busybox, capsys, kwargs, needle, error_cls):
    before = len(daemon.containers(all=True))
    inst = Pod(image=busybox, **kwargs).create()
    assert inst.ok is False
    assert needle in inst.error_msg.lower(), inst.error_msg
    assert inst.container_id == "" and inst.url == ""
    assert inst.status_code == 400
    assert f"=> Error: {inst.error_msg}" in capsys.readouterr().err
    with pytest.raises(error_cls):
        inst.raise_for_error()
    with pytest.raises(CoveError, match="not created"):
        inst.status()
    assert inst.terminate() is False
    assert len(daemon.containers(all=True)) == before


def test_unknown_image_is_ok_false_with_404(daemon, registry):
    before = len(daemon.containers(all=True))
    inst = Pod(image=Image(base_image=registry.image("nope:latest")), ports=[8000]).create(quiet=True)
    assert inst.ok is False
    assert inst.status_code == 404, inst
    assert "nope" in inst.error_msg, inst.error_msg
    assert len(daemon.containers(all=True)) == before


def test_unreachable_daemon_raises(daemon, busybox):
    client = Client(Config(api_url=f"http://127.0.0.1:{free_port()}", token="x", timeout=5))
    with pytest.raises(CoveConnectionError, match="cannot reach the Cove daemon"):
        Pod(image=busybox, client=client).create()


def test_bad_token_raises(daemon, busybox):
    client = Client(Config(api_url=daemon.api_url, token="wrong"))
    with pytest.raises(cove.CoveAuthError, match="COVE_TOKEN"):
        Pod(image=busybox, client=client).create()


def test_image_env_vars_reach_pod_without_build(daemon, busybox):
    image = Image(base_image=busybox).with_envs({"FROM_IMAGE": "1", "BOTH": "image"})
    pod = Pod(image=image, env={"BOTH": "pod"}, entrypoint=["sh", "-c", "env; exec sleep 300"])
    assert pod.request_body()["env"] == {"FROM_IMAGE": "1", "BOTH": "pod"}
    inst = pod.create(quiet=True)
    assert inst.ok, inst.error_msg
    logs = wait_until("env in the logs", 10, lambda: "BOTH=" in inst.logs() and inst.logs())
    assert "FROM_IMAGE=1" in logs and "BOTH=pod" in logs
    assert inst.terminate()


def test_deploy_needs_a_name(daemon, busybox):
    with pytest.raises(CoveError, match=r"a deployment needs a name: Pod\(name=\.\.\.\)"):
        Pod(image=busybox).deploy()


def test_deploy(daemon, busybox, tmp_path, capsys):
    name = f"sdk-{os.getpid()}"
    pod = Pod(name=name, image=busybox, ports=[8000], entrypoint=HTTPD, keep_warm_seconds=60)
    dep = pod.deploy()
    try:
        assert dep.name == name and dep.version == 1 and dep.status == "ACTIVE"
        assert dep.url == dep.urls[8000] and f"{name}-" in dep.url
        assert "Hello from a Cove pod" in serving(daemon, dep.url)
        out = capsys.readouterr().out
        assert f"=> Deployed {name} (version 1) ===> {dep.url}" in out

        # `python -m cove deploy app.py:pod` makes version 2 at the same URL.
        (tmp_path / "app.py").write_text(
            "from beam import Image, Pod\n"
            f"pod = Pod(name={name!r}, image=Image(base_image={busybox!r}), ports=[8000],\n"
            f"          entrypoint={HTTPD!r})\n"
        )
        o = subprocess.run([sys.executable, "-m", "cove", "deploy", "app.py:pod"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
        assert o.returncode == 0, o.stderr
        assert f"Deployment {name} (version 2) port 8000 at: {dep.url}" in o.stdout, o.stdout
        assert dep.refresh().version == 2
        serving(daemon, dep.url)

        # The Rust `cove deploy app.py:pod` runs `python3 -m cove.deploy_spec` (this venv's python3).
        if subprocess.run([str(daemon.bin), "deploy", "--help"], capture_output=True).returncode == 0:
            env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
            o = subprocess.run([str(daemon.bin), "deploy", "app.py:pod"], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=120)
            assert o.returncode == 0, o.stderr
            assert dep.refresh().version == 3
            serving(daemon, dep.url)
            # Without an image (COVE_DEFAULT_IMAGE) the app's directory is synced to /app,
            # as Pod.deploy() does.
            (tmp_path / "index.html").write_text("synced by cove deploy\n")
            (tmp_path / "app.py").write_text(
                "from beam import Pod\n"
                f"pod = Pod(name={name!r}, ports=[8000], entrypoint=['httpd', '-f', '-p', '8000', '-h', '/app'])\n"
            )
            o = subprocess.run([str(daemon.bin), "deploy", "app.py:pod"], cwd=tmp_path,
                               env=dict(env, COVE_DEFAULT_IMAGE=busybox),
                               capture_output=True, text=True, timeout=120)
            assert o.returncode == 0, o.stderr
            assert "=> Syncing files" in o.stdout + o.stderr
            assert dep.refresh().version == 4
            assert "synced by cove deploy" in serving(daemon, dep.url)

            (tmp_path / "app.py").write_text("from beam import Pod\npod = Pod(image='x')\n")
            o = subprocess.run([str(daemon.bin), "deploy", "app.py:pod"], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=120)
            assert o.returncode != 0
            assert "a deployment needs a name: Pod(name=...)" in o.stderr, o.stderr

        # Versions are kept; a rollback serves the previous one again as the next version.
        versions = dep.versions()
        assert [v["version"] for v in versions] == list(range(1, dep.version + 1))
        assert [v["current"] for v in versions][-1] is True
        before = dep.version
        dep.rollback()
        assert dep.version == before + 1
        assert dep.versions()[-1]["entrypoint"] == versions[-2]["entrypoint"]
        with pytest.raises(CoveAPIError) as e:
            dep.rollback(version=dep.version)
        assert "already" in str(e.value)
    finally:
        dep.delete()


def test_loopback_daemon_ignores_http_proxy_env(daemon, busybox, monkeypatch):
    # A proxy that does not exist: the SDK must not send loopback API calls through it.
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy"):
        monkeypatch.setenv(var, f"http://127.0.0.1:{free_port()}")
    inst = Pod(image=busybox, client=Client()).create(quiet=True)
    assert inst.ok, inst.error_msg
    assert inst.terminate()


def test_follow_logs_until_exit(daemon, busybox):
    inst = Pod(image=busybox, entrypoint=["sh", "-c", "echo one; sleep 1; echo two; exit 3"]).create(quiet=True)
    assert inst.ok, inst.error_msg
    lines = list(inst.follow_logs())
    assert "one" in lines and "two" in lines, lines
    c = wait_until("the pod to end", 20, lambda: (lambda c: c if c["status"] == "EXITED" else None)(inst.inspect()))
    assert c["exit_code"] == 3
    assert inst.status() == "EXITED"
