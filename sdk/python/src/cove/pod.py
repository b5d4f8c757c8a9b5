"""``Pod``: a serverless container serving its ports at URLs, as in Beam's Pods guide.

Error handling of :meth:`Pod.create` (the guide's ``nb = pod.create(); nb.ok``):

* the daemon refuses or fails the pod (bad port, cpu or memory, unknown image, a start that
  fails): ``create()`` returns a :class:`PodInstance` with ``ok == False`` and ``error_msg``
  set to the daemon's message; nothing is left running. ``instance.raise_for_error()`` turns
  that into the matching :class:`~cove.errors.CoveAPIError`.
* the daemon cannot be reached, refuses the token, or lacks a feature the pod needs (image
  builds, ``authorized=True``): ``create()`` raises a :class:`~cove.errors.CoveError`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

from .client import Client, ProgressFn, print_log, print_progress, quote
from .deployment import DeploymentInstance
from .errors import CoveAPIError, CoveAuthError, CoveError, CoveUnsupportedError
from .image import Image
from .sync import sync_dir

#: cpu as cores (``1``, ``0.5``) or millicores (``"1000m"``).
Cpu = Union[int, float, str]
#: memory as MiB (``128``) or a size (``"512Mi"``, ``"1Gi"``).
Memory = Union[int, str]

DEPLOYMENTS_ROUTE = "/v1/deployments"
#: Where synced files go in the pod, and its working directory.
SYNC_DIR = "/app"


@dataclass
class PodInstance:
    """A pod the daemon launched (or failed to launch: ``ok`` is then ``False``).

    Attributes:
        container_id: ``pod-<stub uuid>-<8 hex>``; empty when ``ok`` is ``False``.
        url: the URL of the pod's first port (empty without ports).
        urls: every port's URL, by port.
        ok: whether the container was created.
        error_msg: the daemon's message when ``ok`` is ``False``.
        status_code: the daemon's HTTP status for that error (400 bad input, 404 unknown image, ...).
        container: the daemon's full description of the container.
    """

    container_id: str = ""
    url: str = ""
    urls: Dict[int, str] = field(default_factory=dict)
    ok: bool = False
    error_msg: str = ""
    status_code: Optional[int] = None
    container: Dict[str, Any] = field(default_factory=dict)
    _client: Optional[Client] = field(default=None, repr=False, compare=False)

    @classmethod
    def from_container(cls, container: Dict[str, Any], client: Optional[Client] = None) -> "PodInstance":
        """An instance for a container as the API describes it."""
        urls = {int(u["port"]): str(u["url"]) for u in container.get("urls") or []}
        first = str((container.get("urls") or [{}])[0].get("url", "")) if container.get("urls") else ""
        return cls(
            container_id=str(container.get("id", "")),
            url=first,
            urls=urls,
            ok=True,
            container=container,
            _client=client,
        )

    @property
    def stub_id(self) -> str:
        """The pod's id (the uuid in its URLs)."""
        return str(self.container.get("stub_id", ""))

    def _need(self) -> Client:
        if not self.ok or not self.container_id:
            raise CoveError(f"the pod was not created: {self.error_msg or 'no container'}")
        return self._client or Client.default()

    def raise_for_error(self) -> "PodInstance":
        """Raises the daemon's error if the pod was not created; returns ``self`` otherwise."""
        if not self.ok:
            from .errors import api_error

            raise api_error(self.error_msg or "the pod was not created", self.status_code)
        return self

    def inspect(self) -> Dict[str, Any]:
        """The container as the daemon describes it now (``GET /v1/containers/{id}``)."""
        self.container = self._need().request_object("GET", f"/v1/containers/{quote(self.container_id)}")
        return self.container

    def status(self) -> str:
        """The container's status now: ``RUNNING``, ``STOPPED``, ``EXITED``, ``OOM_KILLED``, ..."""
        return str(self.inspect()["status"])

    def logs(self) -> str:
        """The container's stdout and stderr so far."""
        return self._need().text(f"/v1/containers/{quote(self.container_id)}/logs")

    def follow_logs(self) -> Iterator[str]:
        """The container's output line by line, until it ends."""
        return self._need().stream_lines(f"/v1/containers/{quote(self.container_id)}/logs?follow=true")

    def exec(self, *cmd: str) -> Dict[str, Any]:
        """Runs a command in the running container; returns ``exit_code``, ``stdout``, ``stderr``."""
        path = f"/v1/containers/{quote(self.container_id)}/exec"
        return self._need().request_object("POST", path, {"cmd": list(cmd)})

    def set_egress(self, block_network: bool = False, allow_list: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        """Changes the running pod's egress without restarting it: ``block_network=True`` (no
        outbound connections), ``allow_list=["10.0.0.0/8", ...]`` (only those CIDRs), or neither
        (open again). Returns the container as the daemon describes it now. A bad CIDR or both
        at once raise :class:`~cove.errors.CoveBadRequestError`; a pod that is not running
        raises the daemon's 409 error.
        """
        body = {"block_network": bool(block_network), "allow_list": [str(c) for c in (allow_list or [])]}
        path = f"/v1/containers/{quote(self.container_id)}/egress"
        self.container = self._need().request_object("PUT", path, body)
        return self.container

    def terminate(self) -> bool:
        """Stops the container (SIGTERM, then SIGKILL after the daemon's grace period).

        Returns ``True`` once it has stopped (also if it had already ended), ``False`` if there
        was no container to stop. Raises :class:`CoveError` if the daemon cannot stop it.
        """
        if not self.ok or not self.container_id:
            return False
        self.container = self._need().request_object("POST", f"/v1/containers/{quote(self.container_id)}/stop")
        return True


class Pod:
    """A pod: an image, its ports, resources, environment and entrypoint (Beam's ``Pod``).

    Args:
        image: an :class:`Image` or an image reference string. Default: ``Image()``, i.e.
            ``$COVE_DEFAULT_IMAGE``.
        ports: ports the pod listens on; each is served at its own URL.
        cpu: cores (``1``, ``0.5``) or millicores (``"1000m"``).
        memory: MiB (``128``) or a size (``"512Mi"``, ``"1Gi"``).
        env: environment variables.
        entrypoint: command and arguments; empty means the image's own.
        name: a name; deployments need one.
        keep_warm_seconds: seconds without connections before the pod stops; ``-1`` never.
        authorized: serve the pod's URLs only to requests with a token of its workspace (or
            the admin token), as ``Authorization: Bearer <token>`` or ``?auth_token=<token>``;
            the gateway removes the token before the pod sees the request.
        app: accepted for compatibility with Beam, unused.
        sync: upload the current directory and run the entrypoint in it (at ``/app``), as
            ``=> Syncing files``; the default is to sync when no ``image`` is given. Files
            matching ``.gitignore``/``.coveignore`` patterns (in any directory, git's rules,
            ``**`` too) are left out, and the total is capped (``COVE_SYNC_MAX_BYTES``, default
            100 MiB). Only files the daemon lacks are sent (it keeps each by digest); see
            :mod:`cove.sync`.
        isolation: the runtime isolating the pod: ``"runc"`` or ``"gvisor"`` (gVisor's runsc:
            the pod's system calls go to gVisor's own kernel). Default: the daemon's
            ``--default-isolation``. A bad value is the daemon's 400 error.
        disk: largest size of the pod's writable layer, MiB (``1024``) or a size (``"1Gi"``);
            writes past it fail with "No space left on device". Default: the daemon's
            ``--default-disk`` (unlimited unless set).
        log_max_size: largest size of one file of the pod's log (stdout and stderr), MiB
            (``10``) or a size (``"512Ki"``, ``"20Mi"``); the log is rotated before it grows
            past it. Default: the daemon's ``--log-max-size`` (10 MiB).
        log_max_files: log files kept, the current one included (1-100): the log takes at most
            ``log_max_size × log_max_files`` on disk. Default: the daemon's ``--log-max-files``
            (3).
        block_network: no outbound connections at all (the pod is still served at its URLs).
        allow_list: only these destinations, as CIDRs (``"10.0.0.0/8"``, ``"1.2.3.4/32"``,
            ``"2001:db8::/32"``; at most 256). Not together with ``block_network``. Change it on
            a running pod with :meth:`PodInstance.set_egress`.
        client: the daemon to talk to (default: from ``COVE_API_URL``/``COVE_TOKEN``).
    """

    def __init__(
        self,
        image: Union[Image, str, None] = None,
        ports: Optional[Sequence[int]] = None,
        cpu: Cpu = 1,
        memory: Memory = 128,
        env: Optional[Dict[str, str]] = None,
        entrypoint: Optional[Sequence[str]] = None,
        name: Optional[str] = None,
        keep_warm_seconds: int = 600,
        authorized: bool = False,
        app: str = "",
        *,
        sync: Optional[bool] = None,
        isolation: Optional[str] = None,
        disk: Optional[Memory] = None,
        log_max_size: Optional[Memory] = None,
        log_max_files: Optional[int] = None,
        block_network: bool = False,
        allow_list: Optional[Sequence[str]] = None,
        client: Optional[Client] = None,
    ) -> None:
        self.sync: bool = (image is None) if sync is None else bool(sync)
        self._sync_asked = sync
        self.image: Image = Image(base_image=image) if isinstance(image, str) else (image or Image())
        self.ports: List[int] = list(ports or [])
        self.cpu = cpu
        self.memory = memory
        self.env: Dict[str, str] = dict(env or {})
        self.entrypoint: List[str] = list(entrypoint or [])
        self.name = name
        self.keep_warm_seconds = keep_warm_seconds
        self.authorized = authorized
        self.isolation = isolation
        self.disk = disk
        self.log_max_size = log_max_size
        self.log_max_files = log_max_files
        self.block_network = block_network
        self.allow_list: List[str] = [str(c) for c in (allow_list or [])]
        self.app = app
        self._client = client
        #: The instance the last :meth:`create` made.
        self.instance: Optional[PodInstance] = None

    def __repr__(self) -> str:
        return (
            f"Pod(image={self.image!r}, ports={self.ports!r}, cpu={self.cpu!r}, memory={self.memory!r}, "
            f"entrypoint={self.entrypoint!r}, name={self.name!r}, keep_warm_seconds={self.keep_warm_seconds!r})"
        )

    @property
    def client(self) -> Client:
        """The daemon client this pod uses."""
        if self._client is None:
            self._client = Client.default()
        return self._client

    def request_body(self, image_reference: Optional[str] = None, synced: bool = False) -> Dict[str, Any]:
        """The ``POST /v1/pods`` body (``CreatePodRequest``) for this pod.

        ``image_reference`` replaces the image's base reference (a built image's);
        ``synced``: that image holds the synced files, the pod runs in ``/app``.
        """
        built = self.image.needs_build() or synced
        env = dict(self.image.env_vars) if not built else {}
        env.update({str(k): str(v) for k, v in self.env.items()})
        body: Dict[str, Any] = {
            "image": image_reference or self.image.reference(),
            "ports": list(self.ports),
            "cpu": self.cpu,
            "memory": self.memory,
            "env": env,
            "keep_warm_seconds": self.keep_warm_seconds,
        }
        if self.entrypoint:
            body["entrypoint"] = [str(a) for a in self.entrypoint]
        if self.name is not None:
            body["name"] = self.name
        if synced:
            body["workdir"] = SYNC_DIR
        if self.image.base_image_creds and not built:
            body["registry_auth"] = dict(self.image.base_image_creds)
        if self.authorized:
            body["authorized"] = True
        if self.isolation is not None:
            body["isolation"] = self.isolation
        if self.disk is not None:
            body["disk"] = self.disk
        if self.log_max_size is not None:
            body["log_max_size"] = self.log_max_size
        if self.log_max_files is not None:
            body["log_max_files"] = self.log_max_files
        if self.block_network:
            body["block_network"] = True
        if self.allow_list:
            body["allow_list"] = list(self.allow_list)
        return body

    def _resolve(self, progress: Optional[ProgressFn], log: Optional[ProgressFn]) -> str:
        """The image to run: with ``sync``, the image plus the current directory at ``/app``
        (uploaded only if the daemon lacks it), built by the daemon."""
        extra: List[Dict[str, Any]] = []
        if self.sync:
            self.image.reference()  # no image at all is an error before any work
            if progress is not None:
                progress("Syncing files")
            synced = sync_dir(self.client, os.getcwd())
            if progress is not None:
                progress(f"Synced {synced.files} files ({synced.uploaded} uploaded, {synced.uploaded_bytes} bytes)")
            extra.append({"local_path": {"archive": synced.digest, "remote": SYNC_DIR}})
        return self.image.resolve(self.client, progress, log, extra_steps=extra)

    def _check_authorized(self) -> None:
        if not self.authorized:
            return
        props = self.client.schema("CreatePodRequest").get("properties") or {}
        if "authorized" not in props:
            raise CoveUnsupportedError(
                "authorized=True is not supported by this daemon yet: its pods' URLs are open; "
                "use authorized=False"
            )

    def create(
        self,
        *,
        quiet: bool = False,
        on_progress: Optional[ProgressFn] = None,
        on_log: Optional[ProgressFn] = None,
    ) -> PodInstance:
        """Launches the pod and returns its :class:`PodInstance`.

        Prints the daemon's progress as it works (``=> Creating container``, ...), then
        ``=> Container created successfully ===> <id>``; ``quiet=True`` prints nothing, and
        ``on_progress`` receives each message instead of printing it (``on_log`` each line of
        an image build's output).

        Returns an instance with ``ok == False`` and ``error_msg`` if the daemon refused or failed
        the pod; raises :class:`CoveError` if the daemon cannot be reached or lacks a feature the
        pod needs (see the module docstring).
        """
        progress = on_progress or (None if quiet else print_progress)
        log = on_log or (None if quiet else print_log)
        self._check_authorized()
        try:
            reference = self._resolve(progress, log)
            last = self.client.stream("POST", "/v1/pods", self.request_body(reference, self.sync), progress)
        except CoveAuthError:
            raise
        except CoveAPIError as e:
            self.instance = PodInstance(ok=False, error_msg=e.message, status_code=e.status, _client=self.client)
            if not quiet and on_progress is None:
                print(f"=> Error: {e.message}", file=sys.stderr, flush=True)
            return self.instance
        container = last.get("container")
        if not isinstance(container, dict):
            raise CoveError(f"the daemon's answer has no container: {str(last)[:300]}")
        self.instance = PodInstance.from_container(container, self.client)
        if progress is not None:
            progress(f"Container created successfully ===> {self.instance.container_id}")
        return self.instance

    def terminate(self) -> bool:
        """Stops the container the last :meth:`create` made; ``False`` if there is none."""
        if self.instance is None:
            return False
        return self.instance.terminate()

    def deploy(self, *, quiet: bool = False) -> DeploymentInstance:
        """Creates the deployment named ``name``, or replaces its version (``POST /v1/deployments``).

        A deployment keeps a stable URL across versions, scales to zero after
        ``keep_warm_seconds`` without connections and wakes on the next request.

        Raises:
            CoveError: the pod has no name.
            CoveUnsupportedError: the daemon has no deployments.
            CoveAPIError: the daemon refused the deployment (its message says why).
        """
        if not self.name:
            raise CoveError("a deployment needs a name: Pod(name=...)")
        self._check_authorized()
        if not self.client.has_route("post", DEPLOYMENTS_ROUTE):
            raise CoveUnsupportedError(
                f"deployments are not supported by this daemon yet (no POST {DEPLOYMENTS_ROUTE})"
            )
        progress = None if quiet else print_progress
        reference = self._resolve(progress, None if quiet else print_log)
        if progress is not None:
            progress(f"Deploying {self.name}")
        last = self.client.stream("POST", DEPLOYMENTS_ROUTE, self.request_body(reference, self.sync), progress)
        deployment = last.get("deployment", last)
        if not isinstance(deployment, dict) or "name" not in deployment:
            raise CoveError(f"the daemon's answer has no deployment: {str(last)[:300]}")
        instance = DeploymentInstance.from_api(deployment, self.client)
        if progress is not None:
            progress(f"Deployed {instance.name} (version {instance.version}) ===> {instance.url or instance.name}")
        return instance
