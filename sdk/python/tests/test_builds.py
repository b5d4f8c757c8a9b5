"""Image builds through the SDK against a real daemon (`POST /v1/images/build`)."""

from __future__ import annotations

from cove import Image, Pod

from conftest import HTTPD, http_get, wait_until


def test_build_commands_then_cached(daemon, busybox, capsys):
    image = Image(base_image=busybox).add_commands(["echo built-by-cove | tee /www/built.txt"]).with_envs("BUILT=1")
    pod = Pod(image=image, ports=[8000], entrypoint=HTTPD)
    inst = pod.create()
    assert inst.ok, inst.error_msg
    daemon.note_veths()
    first = capsys.readouterr().out.splitlines()
    assert first[-2:] == ["=> Creating container", f"=> Container created successfully ===> {inst.container_id}"]
    assert first[0] == "=> Building image", first
    # The step's output, printed as is, after the build started.
    assert "built-by-cove" in first[1:-2], first

    def body():
        try:
            status, text = http_get(inst.url + "/built.txt", daemon.gateway)
        except OSError:
            return None
        return text if status == 200 else None

    assert "built-by-cove" in wait_until("the built file to be served", 30, body)
    assert pod.terminate()

    again = Pod(image=image, ports=[8000], entrypoint=HTTPD).create()
    assert again.ok, again.error_msg
    second = capsys.readouterr().out.splitlines()
    assert "=> Using cached image" in second, second
    assert again.terminate()


def test_failing_build_step_is_ok_false(daemon, busybox):
    before = len(daemon.containers(all=True))
    image = Image(base_image=busybox).add_commands(["echo about-to-fail; exit 7"])
    logs = []
    inst = Pod(image=image, ports=[8000]).create(on_progress=lambda m: None, on_log=logs.append)
    assert inst.ok is False
    assert "exit code 7" in inst.error_msg, inst.error_msg
    assert logs == ["about-to-fail"], logs  # the step's output, streamed to on_log
    assert len(daemon.containers(all=True)) == before


def test_deploy_spec_builds_the_image(daemon, busybox, tmp_path):
    import json
    import subprocess
    import sys

    def spec(commands):
        (tmp_path / "app.py").write_text(
            "from beam import Image, Pod\n"
            f"pod = Pod(name='built', image=Image(base_image={busybox!r}).add_commands({commands!r}),\n"
            "          ports=[8000])\n"
        )
        return subprocess.run([sys.executable, "-m", "cove.deploy_spec", "app.py:pod"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=180)

    o = spec(["echo spec-build > /www/spec.txt"])
    assert o.returncode == 0, o.stderr
    body = json.loads(o.stdout)
    assert body["name"] == "built" and body["image"] and body["image"] != busybox, body
    assert "=> " in o.stderr  # the build's progress, on stderr
    # The request names an image the daemon has: a pod from it serves the built file.
    inst = Pod(image=body["image"], ports=[8000], entrypoint=HTTPD).create(quiet=True)
    assert inst.ok, inst.error_msg
    assert "spec-build" in wait_until(
        "the built file", 30,
        lambda: (lambda r: r[1] if r[0] == 200 else None)(http_get(inst.url + "/spec.txt", daemon.gateway)),
    )
    assert inst.terminate()

    o = spec(["exit 3"])
    assert o.returncode == 1 and o.stdout == ""
    assert "exit code 3" in o.stderr.strip().splitlines()[-1], o.stderr
