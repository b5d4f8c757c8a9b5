"""Syncing files, content-addressed per file: only files the daemon lacks are sent.

1. :func:`scan` lists a directory as a manifest: every entry the ignore rules keep (each
   directory before what it holds) with each file's size and sha256, after checking the total
   against the cap (``COVE_SYNC_MAX_BYTES``, default 100 MiB).
2. ``POST /v1/images/build/files/missing`` with the manifest answers the digests the daemon
   does not store; ``POST /v1/images/build/files`` sends just those (one tar whose entries are
   named ``sha256:<hex>``; the daemon checks each against its name).
3. ``POST /v1/images/build/files/context`` has the daemon assemble the deterministic tar of the
   manifest (sorted, mtime 0, uid/gid 0) and store it as a build context: the same files give
   the same digest, so the build that adds them is cached.

Ignore rules (the same as the ``cove`` CLI's, tested against ``tests/sync_ignore_cases.json``):
``.gitignore`` then ``.coveignore`` in every directory, as git reads them: a pattern in
``sub/.gitignore`` applies under ``sub/``; without a ``/`` (``*.log``) it matches a name at any
depth, with one (``/top.txt``, ``src/gen.py``) it is anchored to its file's directory; a
trailing ``/`` matches directories only; ``*``, ``?``, ``[a-z]``, ``[!0-9]``, ``\\x``; a ``**``
component is any number of directories (``**/cache``, ``a/**/b``), a trailing ``/**``
everything inside; ``!pattern`` re-includes, the last match wins (deeper files last). An
ignored directory is not entered. ``.git``, ``__pycache__`` and ``.venv`` are always skipped.

A single file (``Image.add_local_path`` of a file) is still sent as a one-entry tar with
``POST /v1/images/build/context``, unless ``HEAD /v1/images/build/context/{digest}`` says the
daemon has it.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .client import Client, quote
from .errors import CoveError, CoveNotFoundError

CONTEXT_ROUTE = "/v1/images/build/context"
FILES_ROUTE = "/v1/images/build/files"
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
#: The most entries a synced directory may hold (the daemon's limit too).
MAX_ENTRIES = 100_000
ALWAYS_SKIPPED = (".git", "__pycache__", ".venv")
IGNORE_FILES = (".gitignore", ".coveignore")


def max_bytes() -> int:
    """The sync cap: ``$COVE_SYNC_MAX_BYTES`` or 100 MiB."""
    raw = os.environ.get("COVE_SYNC_MAX_BYTES", "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        return int(raw)
    except ValueError:
        raise CoveError(f"COVE_SYNC_MAX_BYTES={raw!r} is not a number of bytes") from None


# ------------------------------------------------------------------ ignore rules

# A name pattern's tokens: ("c", char), ("?",), ("*",), ("[", negated, [(lo, hi), ...]).
_Token = Tuple[Any, ...]


def _class(chars: str, start: int) -> Optional[Tuple[_Token, int]]:
    """The ``[...]`` class starting after a ``[`` and the index of its ``]`` (None: no ``]``)."""
    i = start
    negated = i < len(chars) and chars[i] in "!^"
    if negated:
        i += 1
    first, ranges = i, []
    while i < len(chars):
        c = chars[i]
        if c == "]" and i > first:
            return ("[", negated, ranges), i
        if i + 2 < len(chars) and chars[i + 1] == "-" and chars[i + 2] != "]":
            ranges.append((c, chars[i + 2]))
            i += 3
        else:
            ranges.append((c, c))
            i += 1
    return None


def _tokens(pattern: str) -> List[_Token]:
    out: List[_Token] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(("*",))
        elif c == "?":
            out.append(("?",))
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(("c", pattern[i]))
        elif c == "[":
            cls = _class(pattern, i + 1)
            if cls is None:
                out.append(("c", "["))
            else:
                out.append(cls[0])
                i = cls[1]
        else:
            out.append(("c", c))
        i += 1
    return out


def _token_matches(t: _Token, c: str) -> bool:
    if t[0] == "c":
        return t[1] == c
    if t[0] == "?":
        return True
    if t[0] == "[":
        return any(lo <= c <= hi for lo, hi in t[2]) != t[1]
    return False


def glob(pattern: str, name: str) -> bool:
    """A name against one pattern component (no ``/`` in either)."""
    p = _tokens(pattern)
    pi = si = 0
    star: Optional[Tuple[int, int]] = None
    while si < len(name):
        if pi < len(p) and p[pi] == ("*",):
            star = (pi, si)
            pi += 1
        elif pi < len(p) and _token_matches(p[pi], name[si]):
            pi += 1
            si += 1
        elif star is not None:
            pi, si = star[0] + 1, star[1] + 1
            star = (star[0], star[1] + 1)
        else:
            return False
    return all(t == ("*",) for t in p[pi:])


def _match_segments(pattern: List[str], path: List[str]) -> bool:
    """Pattern components against path components; ``**`` is any number of them (at least
    one when it is the last component)."""
    if not pattern:
        return not path
    first, rest = pattern[0], pattern[1:]
    if first == "**":
        if not rest:
            return bool(path)
        return any(_match_segments(rest, path[i:]) for i in range(len(path) + 1))
    return bool(path) and glob(first, path[0]) and _match_segments(rest, path[1:])


@dataclass
class _Rule:
    base: str  # the ignore file's directory under the root ("" at the top)
    segments: List[str]
    negated: bool
    dir_only: bool
    anchored: bool


@dataclass
class Ignore:
    """The patterns in force in a directory: its ignore files' and its ancestors'."""

    rules: List[_Rule] = field(default_factory=list)

    def add(self, base: str, text: str) -> None:
        """Adds the patterns of ignore-file ``text`` found in directory ``base``."""
        # Lines end at "\n"; trailing spaces, tabs and "\r" are dropped (as the CLI does).
        for line in text.split("\n"):
            line = line.rstrip(" \t\r")
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            if negated:
                line = line[1:]
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            anchored = "/" in line
            segments = [s for s in line.split("/") if s]
            if segments:
                self.rules.append(_Rule(base, segments, negated, dir_only, anchored))

    def enter(self, dir_abs: str, rel: str) -> int:
        """Adds ``dir_abs``'s ignore files (scoped to ``rel``); returns the rule count before,
        for :meth:`leave`."""
        before = len(self.rules)
        for name in IGNORE_FILES:
            p = os.path.join(dir_abs, name)
            try:
                with open(p, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                continue
            except OSError as e:
                raise CoveError(f"cannot read {p}: {e.strerror}") from None
            self.add(rel, text)
        return before

    def leave(self, mark: int) -> None:
        del self.rules[mark:]

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether ``rel`` (``/``-separated, under the root) is left out."""
        name = rel.rsplit("/", 1)[-1]
        if name in ALWAYS_SKIPPED:
            return True
        out = False
        for r in self.rules:
            if r.dir_only and not is_dir:
                continue
            if r.base:
                if not rel.startswith(r.base + "/"):
                    continue
                under = rel[len(r.base) + 1 :]
            else:
                under = rel
            hit = _match_segments(r.segments, under.split("/")) if r.anchored else glob(r.segments[0], name)
            if hit:
                out = not r.negated
        return out


# ------------------------------------------------------------------ the manifest


@dataclass
class Local:
    """A directory ready to sync."""

    #: ``{"entries": [...]}`` as the daemon reads it.
    manifest: Dict[str, Any]
    #: ``(digest, absolute path)`` of each file, in manifest order.
    files: List[Tuple[str, str]]
    #: The files' total bytes.
    bytes: int


def _walk(root: str) -> List[Tuple[str, str, os.stat_result]]:
    """``(relative path, absolute path, lstat)`` of every entry kept, each directory before
    what it holds."""
    ignore = Ignore()
    out: List[Tuple[str, str, os.stat_result]] = []

    def walk(dir_abs: str, dir_rel: str) -> None:
        mark = ignore.enter(dir_abs, dir_rel)
        try:
            names = sorted(os.listdir(dir_abs))
        except OSError as e:
            raise CoveError(f"cannot sync {dir_abs}: {e.strerror}") from None
        for name in names:
            abs_path = os.path.join(dir_abs, name)
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise CoveError(f"cannot sync {abs_path!r}: its name is not UTF-8") from None
            rel = f"{dir_rel}/{name}" if dir_rel else name
            try:
                st = os.lstat(abs_path)
            except OSError as e:
                raise CoveError(f"cannot sync {abs_path}: {e.strerror}") from None
            is_dir = stat.S_ISDIR(st.st_mode)
            if not (is_dir or stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                continue  # sockets, fifos and devices are not synced
            if ignore.ignored(rel, is_dir):
                continue
            if len(out) >= MAX_ENTRIES:
                raise CoveError(f"cannot sync {abs_path}: over {MAX_ENTRIES} entries; add patterns to .coveignore")
            out.append((rel, abs_path, st))
            if is_dir:
                walk(abs_path, rel)
        ignore.leave(mark)

    walk(root, "")
    return out


def synced_paths(root: str) -> List[str]:
    """The paths a sync of ``root`` keeps, in manifest order."""
    return [rel for rel, _, _ in _walk(os.path.abspath(root))]


def _hash_file(path: str) -> Tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 16), b""):
                h.update(chunk)
                n += len(chunk)
    except OSError as e:
        raise CoveError(f"cannot sync {path}: {e.strerror}") from None
    return "sha256:" + h.hexdigest(), n


def scan(root: str, cap: Optional[int] = None) -> Local:
    """Walks ``root`` and hashes its files (see the module docstring).

    Raises:
        CoveError: ``root`` is not a directory, the files total more than the cap (checked
            before any file is read), too many entries, an unreadable file or directory.
    """
    cap = max_bytes() if cap is None else cap
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise CoveError(f"cannot sync {root}: not a directory")
    found = _walk(root)
    total = sum(st.st_size for _, _, st in found if stat.S_ISREG(st.st_mode))
    if total > cap:
        raise CoveError(
            f"cannot sync {root}: its files total {total} bytes ({total / 1048576:.1f} MiB), "
            f"over the cap of {cap} bytes ({cap / 1048576:.1f} MiB); "
            "add patterns to .coveignore or raise COVE_SYNC_MAX_BYTES"
        )
    entries: List[Dict[str, Any]] = []
    files: List[Tuple[str, str]] = []
    nbytes = 0
    for rel, abs_path, st in found:
        entry: Dict[str, Any] = {"path": rel, "kind": "dir", "mode": stat.S_IMODE(st.st_mode)}
        if stat.S_ISLNK(st.st_mode):
            try:
                target = os.readlink(abs_path)
                target.encode("utf-8")
            except OSError as e:
                raise CoveError(f"cannot sync {abs_path}: {e.strerror}") from None
            except UnicodeEncodeError:
                raise CoveError(f"cannot sync {abs_path}: its target is not UTF-8") from None
            entry.update(kind="symlink", target=target)
        elif stat.S_ISREG(st.st_mode):
            digest, size = _hash_file(abs_path)
            entry.update(kind="file", size=size, digest=digest)
            files.append((digest, abs_path))
            nbytes += size
        entries.append(entry)
    return Local({"entries": entries}, files, nbytes)


def files_tar(local: Local, missing: List[str]) -> Tuple[bytes, int]:
    """A tar of the files whose digest is in ``missing``, each once, named by digest; a file
    whose content changed since :func:`scan` is an error."""
    wanted, sent = set(missing), set()
    buf = io.BytesIO()
    nbytes = 0
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for digest, path in local.files:
            if digest not in wanted or digest in sent:
                continue
            sent.add(digest)
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise CoveError(f"cannot sync {path}: {e.strerror}") from None
            if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
                raise CoveError(f"cannot sync {path}: it changed while syncing; try again")
            info = tarfile.TarInfo(digest)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
            nbytes += len(data)
    unknown = [d for d in missing if d not in sent]
    if unknown:
        raise CoveError(f"the daemon asked for {unknown[0]}, which is not a file of this sync")
    return buf.getvalue(), nbytes


@dataclass
class Synced:
    """What :func:`sync_dir` did."""

    #: ``sha256:<hex>`` of the build context holding the directory (for a ``local_path`` step).
    digest: str
    #: Files in the directory, and how many distinct contents were sent (and their bytes).
    files: int
    uploaded: int
    uploaded_bytes: int


def sync_dir(client: Client, root: str) -> Synced:
    """Syncs ``root`` to the daemon: sends only the files it lacks, then has it assemble the
    build context. Nothing is sent if the directory cannot be read in full or is over the cap.

    Raises:
        CoveError: see :func:`scan`; CoveAPIError: the daemon refused the manifest or upload.
    """
    local = scan(root)
    answer = client.request_object("POST", f"{FILES_ROUTE}/missing", local.manifest)
    missing = answer.get("missing")
    if not isinstance(missing, list):
        raise CoveError(f"the daemon's answer names no missing files: {str(answer)[:200]}")
    uploaded = uploaded_bytes = 0
    if missing:
        data, nbytes = files_tar(local, missing)
        stored = client.upload(FILES_ROUTE, data, "application/x-tar") or {}
        if stored.get("files") != len(missing) or stored.get("bytes") != nbytes:
            raise CoveError(f"the daemon stored {stored!r} of the {len(missing)} files ({nbytes} bytes) sent")
        uploaded, uploaded_bytes = len(missing), nbytes
    ctx = client.request_object("POST", f"{FILES_ROUTE}/context", local.manifest)
    digest = ctx.get("digest")
    if not isinstance(digest, str):
        raise CoveError(f"the daemon's answer names no build context: {str(ctx)[:200]}")
    return Synced(digest, len(local.files), uploaded, uploaded_bytes)


# ------------------------------------------------------------------ whole-tar contexts


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
    """Sends ``local`` (a directory, synced per file; or one file) and returns the
    ``local_path`` build step that adds it at ``remote``."""
    local = os.path.abspath(local)
    if os.path.isdir(local):
        return {"local_path": {"archive": sync_dir(client, local).digest, "remote": remote}}
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
    return {"local_path": {"archive": upload_context(client, buf.getvalue()), "remote": parent or "/"}}
