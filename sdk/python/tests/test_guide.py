"""The Python snippets of Beam's Pods guide (pods-user-guide.md), run as scripts, unchanged
except for the image name: ``jupyter/base-notebook:latest`` becomes the test registry's
``base-notebook:latest`` (Debian python3 + a start-notebook.py stand-in serving :8888).

They need the Debian python3 image (images/build-python-image.sh): skipped, with the reason,
when the Debian mirror is unreachable.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from beam import Pod

from conftest import http_get, wait_until

pytestmark = pytest.mark.python_image

JUPYTER = "jupyter/base-notebook:latest"

LAUNCH = '''
from beam import Image, Pod

notebook = Pod(
    image=Image(base_image="jupyter/base-notebook:latest"),
    ports=[8888],
    cpu=1,
    memory=1024,
    env={
        "NOTEBOOK_ARGS": "--ip='' --NotebookApp.token='' --NotebookApp.notebook_dir=/tmp"
    },
    entrypoint=["start-notebook.py"],
)

nb = notebook.create()

print("✨ Container hosted at:", nb.url)
'''

CUSTOM_IMAGE = '''
from beam import Image, Pod

pod = Pod(
    image=Image(base_image="jupyter/base-notebook:latest"),
    entrypoint=["start-notebook.py"],
)
'''

ENTRYPOINT = CUSTOM_IMAGE + '''
pod.create()
'''

ENV = '''
from beam import Image, Pod

Pod(
    image=Image(base_image="jupyter/base-notebook:latest"),
    env={"NOTEBOOK_ARGS": "--ip='' --NotebookApp.token='' --NotebookApp.notebook_dir=/tmp"},
    entrypoint=["start-notebook.py"],
)
'''

TERMINATE = '''
from beam import Pod

# Initialize a pod
notebook = Pod()

# Launch the pod
notebook.create()

# Terminate the pod
notebook.terminate()
'''

DEPLOY_APP = '''
from beam import Pod

pod = Pod(
    name="my-deployed-pod",
    cpu=2,
    memory="1Gi",
    ports=[8000],
    entrypoint=["python", "-m", "http.server", "8000"],
)
'''

ID = re.compile(r"=> Container created successfully ===> (pod-[0-9a-f-]+)")


def run_snippet(tmp_path: Path, source: str, image: str, extra_env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    assert JUPYTER in source or "Pod()" in source
    (tmp_path / "app.py").write_text(textwrap.dedent(source).replace(JUPYTER, image))
    env = dict(os.environ, **(extra_env or {}))
    return subprocess.run([sys.executable, "app.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=180)


def created_ids(out: str) -> List[str]:
    return ID.findall(out)


def test_launch_notebook(daemon, notebook_image, tmp_path):
    o = run_snippet(tmp_path, LAUNCH, notebook_image)
    assert o.returncode == 0, o.stderr
    lines = o.stdout.splitlines()
    (cid,) = created_ids(o.stdout)
    assert lines[-3:-1] == ["=> Creating container", f"=> Container created successfully ===> {cid}"], lines
    assert all(ln.startswith("=> ") for ln in lines[:-1]), lines
    m = re.fullmatch(r"✨ Container hosted at: (http://\S+-8888\.localhost:\d+)", lines[-1])
    assert m, lines[-1]
    url = m.group(1)

    def page():
        try:
            status, body = http_get(url, daemon.gateway)
        except OSError:
            return None
        return body if status == 200 else None

    body = wait_until("the notebook page", 30, page)
    assert "NOTEBOOK_ARGS=--ip='' --NotebookApp.token='' --NotebookApp.notebook_dir=/tmp" in body
    daemon.note_veths()
    daemon.api("POST", f"/v1/containers/{cid}/stop")


def test_custom_image_and_env_snippets_build_pods(daemon, notebook_image, tmp_path):
    for snippet in (CUSTOM_IMAGE, ENV):
        o = run_snippet(tmp_path, snippet, notebook_image)
        assert o.returncode == 0, o.stderr
        assert o.stdout == "" and created_ids(o.stdout) == []


def test_entrypoint_snippet_creates(daemon, notebook_image, tmp_path):
    o = run_snippet(tmp_path, ENTRYPOINT, notebook_image)
    assert o.returncode == 0, o.stderr
    (cid,) = created_ids(o.stdout)
    c = daemon.api("GET", f"/v1/containers/{cid}")
    assert c["status"] == "RUNNING"  # type: ignore[index]
    daemon.api("POST", f"/v1/containers/{cid}/stop")


def test_terminate_snippet(daemon, notebook_image, tmp_path):
    # `Pod()` has no image: COVE_DEFAULT_IMAGE gives it one.
    o = run_snippet(tmp_path, TERMINATE, notebook_image, {"COVE_DEFAULT_IMAGE": notebook_image})
    assert o.returncode == 0, o.stderr
    (cid,) = created_ids(o.stdout)
    c = daemon.api("GET", f"/v1/containers/{cid}")
    assert c["status"] == "STOPPED" and c["reason"] == "stopped by user", c  # type: ignore[index]


def test_deploy_style_http_server_pod(daemon, python_image, monkeypatch, capsys, tmp_path):
    """The guide's app.py Pod, launched with create(): `python -m http.server 8000`. It has no
    image, so the current directory is synced (`=> Syncing files`) and served from /app."""
    monkeypatch.setenv("COVE_DEFAULT_IMAGE", python_image)
    (tmp_path / "synced.txt").write_text("from the app's directory\n")
    monkeypatch.chdir(tmp_path)
    ns: Dict[str, object] = {}
    exec(textwrap.dedent(DEPLOY_APP), ns)
    pod = ns["pod"]
    assert isinstance(pod, Pod)
    inst = pod.create()
    assert inst.ok, inst.error_msg
    daemon.note_veths()
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"=> Container created successfully ===> {inst.container_id}"
    assert inst.container["name"] == "my-deployed-pod"
    assert inst.container["cpu_millis"] == 2000 and inst.container["memory_mib"] == 1024

    def listing():
        try:
            status, body = http_get(inst.url, daemon.gateway)
        except OSError:
            return None
        return body if status == 200 and "Directory listing for /" in body else None

    body = wait_until("the http.server directory listing", 30, listing)
    assert 'href="synced.txt"' in body, body
    assert "=> Syncing files" in out.splitlines(), out
    assert pod.terminate()
    assert inst.status() == "STOPPED"


def test_deploy_app_with_cli(daemon, python_image, tmp_path):
    """`beam deploy app.py:pod` with the guide's app.py, as `python -m cove deploy app.py:pod`."""
    (tmp_path / "app.py").write_text(textwrap.dedent(DEPLOY_APP))
    env = dict(os.environ, COVE_DEFAULT_IMAGE=python_image)
    o = subprocess.run([sys.executable, "-m", "cove", "deploy", "app.py:pod"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=180)
    try:
        assert o.returncode == 0, o.stderr
        m = re.search(r"Deployment my-deployed-pod \(version \d+\) port 8000 at: (\S+)", o.stdout)
        assert m, o.stdout
        url = m.group(1)

        def listing():
            try:
                status, body = http_get(url, daemon.gateway)
            except OSError:
                return None
            return body if status == 200 and "Directory listing for /" in body else None

        wait_until("the deployment's directory listing", 30, listing)
    finally:
        try:
            daemon.api("DELETE", "/v1/deployments/my-deployed-pod")
        except OSError:
            pass
