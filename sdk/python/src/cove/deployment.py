"""``DeploymentInstance``: a named pod behind a stable URL, as ``Pod.deploy()`` returns it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .client import Client, quote


@dataclass
class DeploymentInstance:
    """A deployment as the daemon describes it (``GET /v1/deployments/{name}``).

    Attributes:
        name: the deployment's name (the Pod's ``name``).
        url: the stable URL of its first port; ``urls`` has every port's.
        version: 1 for the first deploy, one more for each later one.
        status: ``ACTIVE`` (serving; a request wakes it) or ``STOPPED``.
        deployment: the daemon's full description.
    """

    name: str
    url: str = ""
    urls: Dict[int, str] = field(default_factory=dict)
    version: int = 0
    status: str = ""
    deployment: Dict[str, Any] = field(default_factory=dict)
    _client: Optional[Client] = field(default=None, repr=False, compare=False)

    @classmethod
    def from_api(cls, d: Dict[str, Any], client: Optional[Client] = None) -> "DeploymentInstance":
        """An instance for the API's ``Deployment`` object."""
        urls = {int(u["port"]): str(u["url"]) for u in d.get("urls") or []}
        first = str(d["urls"][0]["url"]) if d.get("urls") else ""
        return cls(
            name=str(d["name"]),
            url=first,
            urls=urls,
            version=int(d.get("version") or 0),
            status=str(d.get("status", "")),
            deployment=d,
            _client=client,
        )

    @property
    def ok(self) -> bool:
        """Always ``True``: a failed deploy raises instead."""
        return True

    @property
    def container_id(self) -> str:
        """The live container of the current version ("" while scaled to zero)."""
        c = self.deployment.get("container") or {}
        return str(c.get("id", ""))

    def _path(self, suffix: str = "") -> str:
        return f"/v1/deployments/{quote(self.name)}{suffix}"

    def _update(self, d: Any) -> "DeploymentInstance":
        if isinstance(d, dict):
            fresh = DeploymentInstance.from_api(d, self._client)
            self.url, self.urls, self.version = fresh.url, fresh.urls, fresh.version
            self.status, self.deployment = fresh.status, fresh.deployment
        return self

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client.default()
        return self._client

    def refresh(self) -> "DeploymentInstance":
        """Reloads the deployment's state from the daemon."""
        return self._update(self.client.request("GET", self._path()))

    def stop(self) -> "DeploymentInstance":
        """Stops it and keeps it stopped (its URL answers 503 until :meth:`start`)."""
        return self._update(self.client.request("POST", self._path("/stop")))

    def start(self) -> "DeploymentInstance":
        """Starts a stopped deployment's current version."""
        return self._update(self.client.request("POST", self._path("/start")))

    def versions(self) -> List[Dict[str, Any]]:
        """Every kept version, oldest first: ``version``, ``image``, ``entrypoint``,
        ``ports``, ``current`` (the one served) and ``created_at`` (Unix ms)."""
        out = self.client.request("GET", self._path("/versions"))
        return list(out) if isinstance(out, list) else []

    def rollback(self, version: Optional[int] = None) -> "DeploymentInstance":
        """Serves version ``version`` again (default: the one before the current), as a new
        version at the same URL; requests in flight finish on the old one.

        Raises:
            CoveAPIError: no such version, or it is the current one.
        """
        body: Dict[str, Any] = {} if version is None else {"version": int(version)}
        return self._update(self.client.request("POST", self._path("/rollback"), body))

    def delete(self) -> None:
        """Stops and removes the deployment; its URL then answers 404."""
        self.client.request("DELETE", self._path())

    def terminate(self) -> bool:
        """Same as :meth:`stop`; returns ``True``."""
        self.stop()
        return True
