"""A small HTTP client for the daemon's JSON API (standard library only).

Requests carry ``Authorization: Bearer <token>``. Errors come back as
``{"error": "..."}`` with an HTTP status and become :class:`~cove.errors.CoveAPIError`
subclasses; a daemon that cannot be reached raises :class:`~cove.errors.CoveConnectionError`.
Streamed answers (``Accept: application/x-ndjson``) are read line by line as they arrive.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Iterator, Optional

from .config import Config
from .errors import CoveAPIError, CoveConnectionError, CoveError, api_error

NDJSON = "application/x-ndjson"

#: Called with each ``{"progress": msg}`` message of a streamed request.
ProgressFn = Callable[[str], None]


def print_progress(msg: str) -> None:
    """The guide's progress format: ``=> msg``, flushed at once."""
    print(f"=> {msg}", flush=True)


def print_log(line: str) -> None:
    """A build step's output line, as is, flushed at once."""
    print(line, flush=True)


class Client:
    """Talks to one daemon. Cheap to create; :meth:`default` reads the environment."""

    def __init__(self, config: Optional[Config] = None) -> None:
        self.config = config or Config.from_env()
        self._openapi: Optional[Dict[str, Any]] = None
        # A daemon on this machine is never reached through an HTTP proxy from the environment.
        host = urllib.parse.urlsplit(self.config.api_url).hostname or ""
        loopback = host in ("localhost", "::1") or host.startswith("127.")
        handlers = [urllib.request.ProxyHandler({})] if loopback else []
        self._opener = urllib.request.build_opener(*handlers)

    @classmethod
    def default(cls) -> "Client":
        """A client configured from ``COVE_API_URL`` / ``COVE_TOKEN`` / ``COVE_DATA_DIR``."""
        return cls(Config.from_env())

    # ------------------------------------------------------------------ plumbing

    def _open(
        self,
        method: str,
        path: str,
        body: Any = None,
        accept: str = "application/json",
        raw: Optional[bytes] = None,
        content_type: str = "application/octet-stream",
    ) -> http.client.HTTPResponse:
        url = self.config.api_url + path
        data = None
        headers = {"Accept": accept, "User-Agent": "cove-python-sdk"}
        if raw is not None:
            data = raw
            headers["Content-Type"] = content_type
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            resp: http.client.HTTPResponse = self._opener.open(req, timeout=self.config.timeout)
            return resp
        except urllib.error.HTTPError as e:
            raise _error_from_response(e.code, e.read()) from None
        except urllib.error.URLError as e:
            raise CoveConnectionError(
                f"cannot reach the Cove daemon at {self.config.api_url}: {e.reason} "
                "(is `cove server` running? set COVE_API_URL)"
            ) from None
        except (OSError, socket.timeout) as e:
            raise CoveConnectionError(
                f"cannot reach the Cove daemon at {self.config.api_url}: {e}"
            ) from None

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One JSON request; returns the decoded answer (``None`` for an empty body)."""
        with self._open(method, path, body) as resp:
            raw = _read(resp, self.config.api_url)
            ctype = resp.headers.get("Content-Type", "")
        if not raw:
            return None
        if "json" not in ctype:
            return raw.decode("utf-8", "replace")
        return json.loads(raw)

    def upload(self, path: str, data: bytes, content_type: str) -> Any:
        """``POST`` raw bytes (a tar); returns the decoded JSON answer."""
        with self._open("POST", path, raw=data, content_type=content_type) as resp:
            raw = _read(resp, self.config.api_url)
        return json.loads(raw) if raw else None

    def request_object(self, method: str, path: str, body: Any = None) -> Dict[str, Any]:
        """A JSON request whose answer must be an object."""
        answer = self.request(method, path, body)
        if not isinstance(answer, dict):
            raise CoveError(f"the daemon answered {method} {path} with {str(answer)[:200]!r}, not an object")
        return answer

    def text(self, path: str) -> str:
        """A plain-text answer (logs)."""
        with self._open("GET", path, accept="text/plain") as resp:
            return _read(resp, self.config.api_url).decode("utf-8", "replace")

    def stream_lines(self, path: str) -> Iterator[str]:
        """A plain-text answer, line by line as it arrives (``logs?follow=true``)."""
        with self._open("GET", path, accept="text/plain") as resp:
            for line in resp:
                yield line.decode("utf-8", "replace").rstrip("\n")

    def stream(
        self,
        method: str,
        path: str,
        body: Any,
        on_progress: Optional[ProgressFn] = None,
        on_log: Optional[ProgressFn] = None,
    ) -> Dict[str, Any]:
        """A request answered with NDJSON progress.

        Calls ``on_progress`` for every ``{"progress": msg}`` line and ``on_log`` for every
        ``{"log": line}`` line (a build step's output) as they arrive, and returns the last
        other object (e.g. ``{"container": {...}}``). A final ``{"error": ..., "status": N}``
        raises the matching :class:`CoveAPIError`. A daemon that answers with plain JSON
        instead (an older one) is handled too: its body is the result.
        """
        with self._open(method, path, body, accept=NDJSON) as resp:
            ctype = resp.headers.get("Content-Type", "")
            if NDJSON not in ctype:
                raw = _read(resp, self.config.api_url)
                return json.loads(raw) if raw else {}
            last: Optional[Dict[str, Any]] = None
            try:
                for raw_line in resp:
                    line = raw_line.strip()
                    if not line:
                        continue
                    try:
                        obj = json.loads(line)
                    except ValueError:
                        raise CoveError(f"the daemon sent a malformed progress line: {line[:200]!r}")
                    if isinstance(obj, dict) and "progress" in obj and len(obj) == 1:
                        if on_progress is not None:
                            on_progress(str(obj["progress"]))
                        continue
                    if isinstance(obj, dict) and "log" in obj and len(obj) == 1:
                        if on_log is not None:
                            on_log(str(obj["log"]))
                        continue
                    last = obj
            except (OSError, socket.timeout) as e:
                raise CoveConnectionError(f"lost the connection to the Cove daemon: {e}") from None
        if last is None:
            raise CoveConnectionError("the daemon ended the stream without a result")
        if "error" in last:
            raise api_error(str(last["error"]), last.get("status"))
        return last

    # ------------------------------------------------------------------ capabilities

    def openapi(self) -> Dict[str, Any]:
        """The daemon's OpenAPI document (fetched once per client)."""
        if self._openapi is None:
            doc = self.request("GET", "/v1/openapi.json")
            self._openapi = doc if isinstance(doc, dict) else {}
        return self._openapi

    def has_route(self, method: str, path: str) -> bool:
        """Whether the daemon documents ``method path`` (e.g. ``post /v1/deployments``)."""
        return method.lower() in (self.openapi().get("paths", {}).get(path) or {})

    def schema(self, name: str) -> Dict[str, Any]:
        """A component schema of the daemon's OpenAPI document (``{}`` if absent)."""
        return self.openapi().get("components", {}).get("schemas", {}).get(name) or {}

    def request_schema(self, method: str, path: str) -> Dict[str, Any]:
        """The JSON request body schema of a route, with a top-level ``$ref`` resolved."""
        op = (self.openapi().get("paths", {}).get(path) or {}).get(method.lower()) or {}
        content = (op.get("requestBody") or {}).get("content") or {}
        schema = (content.get("application/json") or {}).get("schema") or {}
        ref = schema.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            return self.schema(ref.rsplit("/", 1)[1])
        return schema


def quote(segment: str) -> str:
    """A path segment, percent-encoded."""
    return urllib.parse.quote(segment, safe="")


def _read(resp: http.client.HTTPResponse, api_url: str) -> bytes:
    try:
        return bytes(resp.read())
    except (OSError, socket.timeout) as e:
        raise CoveConnectionError(f"lost the connection to the Cove daemon at {api_url}: {e}") from None


def _error_from_response(status: int, raw: bytes) -> CoveAPIError:
    message = raw.decode("utf-8", "replace").strip()
    try:
        body = json.loads(raw)
        if isinstance(body, dict) and "error" in body:
            message = str(body["error"])
    except ValueError:
        pass
    if status == 401:
        message = f"{message or 'unauthorized'} (set COVE_TOKEN to the daemon's token, see $COVE_DATA_DIR/token)"
    return api_error(message or f"HTTP {status}", status)
