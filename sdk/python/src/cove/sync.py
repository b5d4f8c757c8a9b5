"""Syncing files: the current directory as a deterministic tar, uploaded once by digest.

The tar holds the directory's files (sorted, mtime 0, uid/gid 0, no owner names), so the
same content always has the same sha256. Top-level ``.gitignore`` and ``.coveignore``
patterns are respected (``*.log``, ``build/``, ``/top-only``, ``!keep.log``); ``.git/``,
``__pycache__/`` and ``.venv/`` are always skipped. The total size is capped
(``COVE_SYNC_MAX_BYTES``, default 100 MiB). The daemon stores the tar by digest
(``POST /v1/images/build/context``); ``HEAD /v1/images/build/context/{digest}`` tells
whether it already has it, so unchanged content is not sent again.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import stat
import tarfile
from typing import List, Optional, Tuple

from .client import Client, quote
from .errors import CoveError, CoveNotFoundError

CONTEXT_ROUTE = "/v1/images/build/context"
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
ALWAYS_SKIPPED = (".git", "__pycache__", ".venv")
IGNORE_FILES = (".gitignore", ".coveignore")


def max_bytes() -> int:
    """The sync cap: ``$COVE_SYNC_MAX_BYTES`` or 100 MiB."""
    raw = os.environ.get("COVE_SYNC_MAX_BYTES")
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        return int(raw)
    except ValueError:
        raise CoveError(f"COVE_SYNC_MAX_BYTES={raw!r} is not a number of bytes") from None


class Ignore:
    """The patterns of a directory's top-level ``.gitignore`` and ``.coveignore``."""

    def __init__(self, root: str) -> None:
        # (pattern, negated, dir_only, anchored)
        self.rules: List[Tuple[str, bool, bool, bool]] = []
        for name in IGNORE_FILES:
            try:
                with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
                    lines = f.read().splitlines()
            except FileNotFoundError:
                continue
            except OSError as e:
                raise CoveError(f"cannot read {os.path.join(root, name)}: {e.strerror}") from None
            for line in lines:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                negated = line.startswith("!")
                if negated:
                    line = line[1:]
                dir_only = line.endswith("/")
                line = line.rstrip("/")
                anchored = "/" in line
                line = line.lstrip("/")
                if line:
                    self.rules.append((line, negated, dir_only, anchored))

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether ``rel`` (a ``/``-separated path under the root) is ignored; the last
        matching pattern wins."""
        name = rel.rsplit("/", 1)[-1]
        if is_dir and name in ALWAYS_SKIPPED:
            return True
        result = False
        for pattern, negated, dir_only, anchored in self.rules:
            if dir_only and not is_dir:
                continue
            target = rel if anchored else name
            if fnmatch.fnmatchcase(target, pattern):
                result = not negated
        return result


def collect(root: str) -> List[Tuple[str, str]]:
    """The (relative path, absolute path) of every entry to sync, sorted; directories
    before their contents."""
    ignore = Ignore(root)
    out: List[Tuple[str, str]] = []

    def walk(dir_abs: str, dir_rel: str) -> None:
        try:
            names = sorted(os.listdir(dir_abs))
        except OSError as e:
            raise CoveError(f"cannot sync {dir_abs}: {e.strerror}") from None
        for name in names:
            abs_path = os.path.join(dir_abs, name)
            rel = f"{dir_rel}/{name}" if dir_rel else name
            is_dir = os.path.isdir(abs_path) and not os.path.islink(abs_path)
            if ignore.ignored(rel, is_dir):
                continue
            out.append((rel, abs_path))
            if is_dir:
                walk(abs_path, rel)

    walk(root, "")
    return out


def make_tar(root: str, cap: Optional[int] = None) -> bytes:
    """The deterministic tar of ``root`` (see the module docstring).

    Raises:
        CoveError: the files exceed the cap (nothing is read past it), or one is unreadable.
    """
    cap = max_bytes() if cap is None else cap
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise CoveError(f"cannot sync {root}: not a directory")
    entries = collect(root)
    total = 0
    for _, abs_path in entries:
        st = os.lstat(abs_path)
        if stat.S_ISREG(st.st_mode):
            total += st.st_size
    if total > cap:
        raise CoveError(
            f"cannot sync {root}: its files total {total} bytes ({total / 1048576:.1f} MiB), "
            f"over the cap of {cap} bytes ({cap / 1048576:.1f} MiB); "
            "add patterns to .coveignore or raise COVE_SYNC_MAX_BYTES"
        )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, abs_path in entries:
            st = os.lstat(abs_path)
            info = tarfile.TarInfo(rel)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(abs_path)
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                try:
                    with open(abs_path, "rb") as f:
                        data = f.read()
                except OSError as e:
                    raise CoveError(f"cannot sync {abs_path}: {e.strerror}") from None
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            # sockets, fifos and devices are not synced
    return buf.getvalue()


def upload_context(client: Client, data: bytes) -> str:
    """Uploads a tar unless the daemon already has it; returns its ``sha256:<hex>``."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if has_context(client, digest):
        return digest
    answer = client.upload(CONTEXT_ROUTE, data, "application/x-tar")
    stored = answer.get("digest") if isinstance(answer, dict) else None
    if stored != digest:
        raise CoveError(f"the daemon stored the upload as {stored!r}, expected {digest}")
    return digest


def has_context(client: Client, digest: str) -> bool:
    """Whether the daemon stores the build context ``digest``."""
    try:
        client.request("HEAD", f"{CONTEXT_ROUTE}/{quote(digest)}")
        return True
    except CoveNotFoundError:
        return False


def local_path_step(client: Client, local: str, remote: str) -> dict:
    """Uploads ``local`` (a directory, or one file) and returns the ``local_path`` build step
    that adds it at ``remote``."""
    local = os.path.abspath(local)
    if os.path.isdir(local):
        data = make_tar(local)
        target = remote
    else:
        parent, name = os.path.split(remote.rstrip("/"))
        if not name:
            raise CoveError(f"add_local_path({local!r}): a file needs a file name as remote path")
        try:
            with open(local, "rb") as f:
                content = f.read()
            mode = stat.S_IMODE(os.stat(local).st_mode)
        except OSError as e:
            raise CoveError(f"cannot read {local}: {e.strerror}") from None
        cap = max_bytes()
        if len(content) > cap:
            raise CoveError(f"cannot sync {local}: {len(content)} bytes, over the cap of {cap} bytes")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), mode, 0
            tar.addfile(info, io.BytesIO(content))
        data = buf.getvalue()
        target = parent or "/"
    return {"local_path": {"archive": upload_context(client, data), "remote": target}}
