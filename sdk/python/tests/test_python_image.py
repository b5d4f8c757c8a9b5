"""The guide's deploy-style pod, `python3 -m http.server 8000`, in a Debian image with python3.

The image is built by images/build-python-image.sh (debootstrap minbase + umoci; about a
minute the first time, then cached under target/tmp). Skipped, with the reason, when the
Debian mirror cannot be reached.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from beam import Pod

from conftest import REPO, TARGET_TMP, _locked_build, http_get, wait_until

SCRIPT = Path(__file__).parent / "images" / "build-python-image.sh"


@pytest.fixture(scope="session")
def python_image(registry) -> str:
    out = TARGET_TMP / "cove-python-image"
    o = _locked_build("cove-python-image.lock", ["bash", str(SCRIPT), str(out)])
    if o.returncode == 75:
        pytest.skip(f"the Debian mirror is unreachable, no python test image: {o.stderr.strip()[-300:]}")
    assert o.returncode == 0, f"build-python-image.sh failed:\n{o.stdout}\n{o.stderr}"
    return registry.push_layout(out, "latest", "python:bookworm")


@pytest.mark.python_image
def test_guide_http_server_pod(daemon, python_image, monkeypatch, capsys):
    # The guide's deploy example names no image: COVE_DEFAULT_IMAGE supplies it.
    monkeypatch.setenv("COVE_DEFAULT_IMAGE", python_image)
    pod = Pod(
        name="my-deployed-pod",
        cpu=2,
        memory="1Gi",
        ports=[8000],
        entrypoint=["python3", "-m", "http.server", "8000"],
    )
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
    assert 'href="www/"' in body and 'href="usr/"' in body
    assert pod.terminate()
    assert inst.status() == "STOPPED"
