"""Syncing files: ``Pod(sync=True)`` (or a pod without an image) uploads the current directory
once by digest and runs its entrypoint in it at /app."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

import cove.sync
from cove import CoveError, Image, Pod

from conftest import wait_until


def _logs_with(inst, needle: str) -> str:
    return wait_until(f"{needle!r} in the pod's logs", 30, lambda: (lambda s: s if needle in s else None)(inst.logs()))


@pytest.fixture
def uploads(monkeypatch):
    """Counts the tars the SDK actually sends to the daemon."""
    sent = []
    real = cove.sync.Client.upload

    def counting(self, path, data, content_type):
        sent.append(hashlib.sha256(data).hexdigest())
        return real(self, path, data, content_type)

    monkeypatch.setattr(cove.sync.Client, "upload", counting)
    return sent


def test_synced_file_is_seen_and_unchanged_files_are_not_uploaded_again(
    daemon, busybox, uploads, tmp_path, monkeypatch, capsys
):
    (tmp_path / "hello.txt").write_text("hello from the synced dir\n")
    (tmp_path / "secret.txt").write_text("must not be synced\n")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.log").write_text("ignored too\n")
    (tmp_path / ".coveignore").write_text("secret.txt\nlogs/\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COVE_DEFAULT_IMAGE", busybox)
    entry = ["sh", "-c", "cat hello.txt; pwd; ls -a /app; test -e /app/secret.txt || echo no-secret; "
             "test -e /app/logs || echo no-logs"]

    # No image given: syncing is the default.
    inst = Pod(entrypoint=entry).create()
    assert inst.ok, inst.error_msg
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "=> Syncing files", out
    assert "=> Building image" in out, out
    logs = _logs_with(inst, "no-logs")
    assert "hello from the synced dir" in logs
    assert "/app\n" in logs  # the entrypoint runs in the synced dir
    assert "no-secret" in logs and ".coveignore" in logs
    assert len(uploads) == 1

    # Same files again: the daemon has the digest (HEAD 200), nothing is sent; the build is cached.
    again = Pod(image=Image(base_image=busybox), entrypoint=["cat", "/app/hello.txt"], sync=True).create()
    assert again.ok, again.error_msg
    assert "hello from the synced dir" in _logs_with(again, "hello")
    out = capsys.readouterr().out.splitlines()
    assert "=> Syncing files" in out and "=> Using cached image" in out, out
    assert len(uploads) == 1, "unchanged files were uploaded again"

    # A changed file is a new digest: uploaded once.
    (tmp_path / "hello.txt").write_text("changed\n")
    third = Pod(image=busybox, entrypoint=["cat", "/app/hello.txt"], sync=True).create(quiet=True)
    assert third.ok, third.error_msg
    assert "changed" in _logs_with(third, "changed")
    assert len(uploads) == 2


def test_daemon_answers_whether_it_has_a_context(daemon, tmp_path):
    from cove import Client

    client = Client()
    (tmp_path / "f.txt").write_text("content for the HEAD check\n")
    data = cove.sync.make_tar(str(tmp_path))
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert cove.sync.has_context(client, "sha256:" + "0" * 64) is False
    if not cove.sync.has_context(client, digest):
        assert cove.sync.upload_context(client, data) == digest
    assert cove.sync.has_context(client, digest) is True


def test_the_tar_is_deterministic_and_respects_ignores(tmp_path):
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "keep.log").write_text("k")
    (tmp_path / "drop.log").write_text("d")
    for skipped in (".git", "__pycache__", ".venv", "build"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "x").write_text("x")
    (tmp_path / ".gitignore").write_text("*.log\n!keep.log\nbuild/\n")
    first = cove.sync.make_tar(str(tmp_path))
    (tmp_path / "a.txt").touch()  # a new mtime, same content
    assert cove.sync.make_tar(str(tmp_path)) == first
    names = tarfile.open(fileobj=io.BytesIO(first)).getnames()
    assert names == [".gitignore", "a.txt", "b.txt", "keep.log"], names
    for m in tarfile.open(fileobj=io.BytesIO(first)).getmembers():
        assert m.mtime == 0 and m.uid == 0 and m.gid == 0


def test_over_the_cap_is_a_clear_error_and_nothing_is_created(
    daemon, busybox, uploads, tmp_path, monkeypatch
):
    (tmp_path / "big.bin").write_bytes(b"x" * 4096)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COVE_SYNC_MAX_BYTES", "1000")
    before = len(daemon.containers(all=True))
    with pytest.raises(CoveError, match=r"4096 bytes .*over the cap of 1000 bytes"):
        Pod(image=busybox, entrypoint=["true"], sync=True).create(quiet=True)
    assert uploads == []
    assert len(daemon.containers(all=True)) == before


def test_unreadable_file_is_named(tmp_path, monkeypatch):
    import os

    if os.geteuid() == 0:
        # root reads anything: a dangling directory entry is unreadable instead.
        bad = tmp_path / "gone"
        bad.mkdir()
        os.chmod(bad, 0)
        monkeypatch.setattr(cove.sync.os, "listdir", _listdir_failing_on(str(bad)))
    else:
        bad = tmp_path / "locked.txt"
        bad.write_text("x")
        os.chmod(bad, 0)
    with pytest.raises(CoveError, match=f"cannot sync {bad}"):
        cove.sync.make_tar(str(tmp_path))


def _listdir_failing_on(path: str):
    import os

    real = os.listdir

    def listdir(p):
        if p == path:
            raise PermissionError(13, "Permission denied", p)
        return real(p)

    return listdir


def test_add_local_path_uploads_and_builds(daemon, busybox, tmp_path, uploads):
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
    assert len(uploads) == 2
