"""Syncing files: ``Pod(sync=True)`` (or a pod without an image) sends the current directory's
files the daemon lacks (content-addressed per file) and runs its entrypoint in it at /app."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

import cove.sync
from cove import CoveError, Image, Pod
from cove.errors import CoveAPIError

from conftest import wait_until

CASES = Path(__file__).with_name("sync_ignore_cases.json")


def _logs_with(inst, needle: str) -> str:
    return wait_until(f"{needle!r} in the pod's logs", 30, lambda: (lambda s: s if needle in s else None)(inst.logs()))


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def uploads(monkeypatch):
    """What the SDK actually sends: ``(route, [tar entry names])`` per upload."""
    sent = []
    real = cove.sync.Client.upload

    def counting(self, path, data, content_type):
        names = tarfile.open(fileobj=io.BytesIO(data)).getnames()
        sent.append((path, names))
        return real(self, path, data, content_type)

    monkeypatch.setattr(cove.sync.Client, "upload", counting)
    return sent


def test_only_changed_files_are_sent_and_the_pod_sees_them(daemon, busybox, uploads, tmp_path, monkeypatch, capsys):
    tag = tmp_path.name  # contents of this run only: none is on the daemon yet
    (tmp_path / "hello.txt").write_text(f"hello from the synced dir {tag}\n")
    for i in range(10):
        (tmp_path / f"mod{i}.py").write_text(f"value = {i}  # {tag}\n")
    (tmp_path / "secret.txt").write_text("must not be synced\n")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.log").write_text("ignored too\n")
    (tmp_path / "pkg" / "gen").mkdir(parents=True)
    (tmp_path / "pkg" / ".gitignore").write_text(f"/gen/\n# {tag}\n")
    (tmp_path / "pkg" / "gen" / "out.bin").write_text("ignored by pkg/.gitignore\n")
    (tmp_path / ".coveignore").write_text(f"secret.txt\nlogs/\n# {tag}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COVE_DEFAULT_IMAGE", busybox)
    entry = ["sh", "-c", "cat hello.txt; pwd; ls -a /app; test -e /app/secret.txt || echo no-secret; "
             "test -e /app/pkg/gen || echo no-gen; test -e /app/logs || echo no-logs"]

    # No image given: syncing is the default. 13 files, all new.
    inst = Pod(entrypoint=entry).create()
    assert inst.ok, inst.error_msg
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "=> Syncing files", out
    assert out[1].startswith("=> Synced 13 files (13 uploaded, "), out
    assert "=> Building image" in out, out
    logs = _logs_with(inst, "no-logs")
    assert "hello from the synced dir" in logs
    assert "/app\n" in logs  # the entrypoint runs in the synced dir
    assert "no-secret" in logs and "no-gen" in logs and ".coveignore" in logs
    assert [(p, len(n)) for p, n in uploads] == [(cove.sync.FILES_ROUTE, 13)]

    # Same files again: the daemon has every digest, nothing is sent; the build is cached.
    again = Pod(image=Image(base_image=busybox), entrypoint=["cat", "/app/hello.txt"], sync=True).create()
    assert again.ok, again.error_msg
    assert "hello from the synced dir" in _logs_with(again, "hello")
    out = capsys.readouterr().out.splitlines()
    assert "=> Synced 13 files (0 uploaded, 0 bytes)" in out and "=> Using cached image" in out, out
    assert len(uploads) == 1, "unchanged files were sent again"

    # One file of many changed: only its new content is sent.
    (tmp_path / "mod4.py").write_text(f"value = 'changed'  # {tag}\n")
    third = Pod(image=busybox, entrypoint=["cat", "/app/mod4.py", "/app/mod5.py"], sync=True).create(quiet=True)
    assert third.ok, third.error_msg
    logs = _logs_with(third, "value = 5")
    assert "value = 'changed'" in logs
    assert uploads[1] == (cove.sync.FILES_ROUTE, [_digest(f"value = 'changed'  # {tag}\n".encode())])


def test_the_cli_and_the_sdk_make_the_same_context(daemon, busybox, cove_bin, tmp_path, monkeypatch, capsys):
    """Both list a tree the same way: the CLI's sync after the SDK's sends nothing and is
    answered from the build cache (same context digest)."""
    (tmp_path / "a.txt").write_text("cli and sdk agree\n")
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    (tmp_path / "sub" / "deep" / "x.py").write_text("x = 1\n")
    (tmp_path / "sub" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(tmp_path / "sub" / "run.sh", 0o755)
    os.symlink("a.txt", tmp_path / "link")
    (tmp_path / "sub" / ".gitignore").write_text("*.tmp\n")
    (tmp_path / "sub" / "skip.tmp").write_text("skipped by both\n")
    monkeypatch.chdir(tmp_path)
    inst = Pod(image=busybox, entrypoint=["cat", "/app/a.txt"], sync=True).create(quiet=True)
    assert inst.ok, inst.error_msg
    o = subprocess.run(
        [str(cove_bin), "run", "--sync", str(tmp_path), "--image", busybox, "--entrypoint", "cat /app/link"],
        capture_output=True, text=True, timeout=120,
    )
    assert o.returncode == 0, o.stderr
    assert "=> Synced 4 files (0 uploaded, 0 bytes)" in o.stdout, o.stdout
    assert "=> Using cached image" in o.stdout, o.stdout


@pytest.mark.parametrize("case", json.loads(CASES.read_text())["cases"], ids=lambda c: c["name"])
def test_the_shared_ignore_cases(tmp_path, case):
    for path, content in case["files"].items():
        p = tmp_path / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    assert sorted(cove.sync.synced_paths(str(tmp_path))) == case["synced"]


def test_the_manifest_lists_dirs_first_and_hashes_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "sub" / "c.txt").write_text("a")
    os.symlink("a.txt", tmp_path / "link")
    local = cove.sync.scan(str(tmp_path))
    entries = local.manifest["entries"]
    assert [e["path"] for e in entries] == ["a.txt", "b.txt", "link", "sub", "sub/c.txt"]
    assert entries[0] == {"path": "a.txt", "kind": "file", "mode": 0o666 & ~_umask(), "size": 1, "digest": _digest(b"a")}
    assert entries[2]["kind"] == "symlink" and entries[2]["target"] == "a.txt"
    assert entries[3]["kind"] == "dir" and "digest" not in entries[3]
    # Only what is missing is sent, once (a.txt and sub/c.txt share content), named by digest.
    data, nbytes = cove.sync.files_tar(local, [_digest(b"a")])
    assert tarfile.open(fileobj=io.BytesIO(data)).getnames() == [_digest(b"a")] and nbytes == 1
    (tmp_path / "a.txt").write_text("changed")
    with pytest.raises(CoveError, match="changed while syncing"):
        cove.sync.files_tar(local, [_digest(b"a")])


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_the_daemon_refuses_a_hostile_manifest(daemon):
    from cove import Client

    client = Client()
    bad = {"entries": [{"path": "../escape", "kind": "file", "mode": 0o644, "size": 1, "digest": _digest(b"a")}]}
    with pytest.raises(CoveAPIError, match="'..' component") as e:
        client.request("POST", cove.sync.FILES_ROUTE + "/missing", bad)
    assert e.value.status == 400


def test_over_the_cap_is_a_clear_error_and_nothing_is_created(daemon, busybox, uploads, tmp_path, monkeypatch):
    (tmp_path / "big.bin").write_bytes(b"x" * 4096)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COVE_SYNC_MAX_BYTES", "1000")
    before = len(daemon.containers(all=True))
    with pytest.raises(CoveError, match=r"4096 bytes .*over the cap of 1000 bytes"):
        Pod(image=busybox, entrypoint=["true"], sync=True).create(quiet=True)
    assert uploads == []
    assert len(daemon.containers(all=True)) == before


def test_an_unreadable_file_is_named_and_nothing_is_sent(daemon, busybox, uploads, tmp_path, monkeypatch):
    (tmp_path / "ok.txt").write_text("fine\n")
    bad = tmp_path / "locked.txt"
    bad.write_text("x")
    real_open = open

    def failing_open(path, *a, **kw):
        # root reads anything: the unreadable file is simulated.
        if str(path) == str(bad):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(cove.sync, "open", failing_open, raising=False)
    monkeypatch.chdir(tmp_path)
    before = len(daemon.containers(all=True))
    with pytest.raises(CoveError, match=f"cannot sync {bad}: Permission denied"):
        Pod(image=busybox, entrypoint=["true"], sync=True).create(quiet=True)
    assert uploads == []
    assert len(daemon.containers(all=True)) == before


def test_an_unreadable_directory_is_named(tmp_path, monkeypatch):
    bad = tmp_path / "gone"
    bad.mkdir()
    real = os.listdir

    def listdir(p):
        if p == str(bad):
            raise PermissionError(13, "Permission denied", p)
        return real(p)

    monkeypatch.setattr(cove.sync.os, "listdir", listdir)
    with pytest.raises(CoveError, match=f"cannot sync {bad}"):
        cove.sync.scan(str(tmp_path))


def test_add_local_path_syncs_a_dir_and_uploads_a_file(daemon, busybox, tmp_path, uploads):
    src = tmp_path / "site"
    src.mkdir()
    (src / "index.txt").write_text("added with add_local_path\n")
    (tmp_path / "one.txt").write_text("a single file\n")
    image = Image(base_image=busybox).add_local_path(str(src), "/srv/site").add_local_path(
        str(tmp_path / "one.txt"), "/etc/one.txt"
    )
    inst = Pod(image=image, entrypoint=["cat", "/srv/site/index.txt", "/etc/one.txt"]).create(quiet=True)
    assert inst.ok, inst.error_msg
    logs = _logs_with(inst, "a single file")
    assert "added with add_local_path" in logs
    assert uploads == [
        (cove.sync.FILES_ROUTE, [_digest(b"added with add_local_path\n")]),
        (cove.sync.CONTEXT_ROUTE, ["one.txt"]),
    ]


def test_daemon_answers_whether_it_has_a_context(daemon):
    from cove import Client

    client = Client()
    assert cove.sync.has_context(client, "sha256:" + "0" * 64) is False
