"""``python3 -m cove.deploy_spec app.py:pod`` (what the Rust ``cove deploy`` runs); no daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def spec(tmp_path: Path, source: str, target: str = "app.py:pod", **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "app.py").write_text(textwrap.dedent(source))
    e = {k: v for k, v in os.environ.items() if k != "COVE_DEFAULT_IMAGE"}
    e.update(env)
    return subprocess.run(
        [sys.executable, "-m", "cove.deploy_spec", target],
        cwd=tmp_path, capture_output=True, text=True, env=e, timeout=60,
    )


def one_error_line(o: subprocess.CompletedProcess, needle: str) -> str:
    assert o.returncode == 1, (o.stdout, o.stderr)
    assert o.stdout == ""
    lines = [ln for ln in o.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, o.stderr
    assert needle in lines[0], lines[0]
    assert not lines[0].startswith("Error"), "cove deploy adds its own prefix"
    return lines[0]


GUIDE_APP = """
    from beam import Pod

    pod = Pod(
        name="my-deployed-pod",
        cpu=2,
        memory="1Gi",
        ports=[8000],
        entrypoint=["python", "-m", "http.server", "8000"],
    )
"""


def test_guide_app_prints_the_request(tmp_path):
    # Without an image the app's directory is synced, which needs a daemon (test_pods.py
    # does that); here it is turned off to see the request alone.
    app = GUIDE_APP.replace("cpu=2,", "cpu=2, sync=False,")
    o = spec(tmp_path, app, COVE_DEFAULT_IMAGE="127.0.0.1:5000/python:bookworm")
    assert o.returncode == 0, o.stderr
    body = json.loads(o.stdout)
    assert body == {
        "image": "127.0.0.1:5000/python:bookworm",
        "ports": [8000],
        "cpu": 2,
        "memory": "1Gi",
        "env": {},
        "keep_warm_seconds": 600,
        "entrypoint": ["python", "-m", "http.server", "8000"],
        "name": "my-deployed-pod",
    }


def test_image_and_local_imports(tmp_path):
    (tmp_path / "helper.py").write_text("PORT = 9000\n")
    o = spec(tmp_path, """
        from cove import Image, Pod
        from helper import PORT
        web = Pod(name="web", image=Image(base_image="reg/x:1").with_envs("A=b"), ports=[PORT],
                  env={"C": "d"}, keep_warm_seconds=-1)
    """, "app.py:web")
    assert o.returncode == 0, o.stderr
    body = json.loads(o.stdout)
    assert body["image"] == "reg/x:1" and body["ports"] == [9000]
    assert body["env"] == {"A": "b", "C": "d"} and body["keep_warm_seconds"] == -1
    assert body["name"] == "web" and "entrypoint" not in body


def test_no_name(tmp_path):
    src = GUIDE_APP.replace('name="my-deployed-pod",', "")
    one_error_line(spec(tmp_path, src, COVE_DEFAULT_IMAGE="x"), "a deployment needs a name: Pod(name=...)")


def test_no_image(tmp_path):
    one_error_line(spec(tmp_path, GUIDE_APP), "a pod needs an image")


def test_syntax_error(tmp_path):
    line = one_error_line(spec(tmp_path, "from beam import Pod\npod = Pod(name='x'\n"), "syntax error")
    assert "app.py:" in line


def test_missing_object(tmp_path):
    one_error_line(spec(tmp_path, GUIDE_APP, "app.py:missing"), "has no object named 'missing'")


def test_missing_file(tmp_path):
    one_error_line(spec(tmp_path, GUIDE_APP, "nope.py:pod"), "nope.py: no such file")


def test_not_a_pod(tmp_path):
    one_error_line(spec(tmp_path, "pod = 42\n"), "is a int, not a Pod")


def test_import_failure(tmp_path):
    line = one_error_line(spec(tmp_path, "import os\nraise RuntimeError('boom')\n"), "RuntimeError: boom")
    assert "app.py:2" in line


@pytest.mark.parametrize("arg", ["app.py", ":pod", "app.py:"])
def test_bad_target(tmp_path, arg):
    one_error_line(spec(tmp_path, GUIDE_APP, arg), "expected FILE.py:NAME")
