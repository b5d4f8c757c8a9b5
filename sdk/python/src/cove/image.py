"""``Image``: the container image a pod runs, as Beam's SDK describes it.

A plain ``Image(base_image="...")`` is an image reference the daemon pulls (or has cached).
Build steps (python packages, commands, local paths, a python version) need the daemon to
build the image: :meth:`Image.resolve` sends them to ``POST /v1/images/build`` when the
daemon offers that route and raises :class:`~cove.errors.CoveUnsupportedError` otherwise.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Union

from .client import Client, ProgressFn
from .errors import CoveError, CoveUnsupportedError

BUILD_ROUTE = "/v1/images/build"


class _hybridmethod:
    """A method callable on the class (``Image.from_registry(ref)``, a new image) or on an
    instance (``image.from_registry(ref)``, changes and returns it), as Beam allows both."""

    def __init__(self, func: Any) -> None:
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, obj: Any, cls: Any) -> Any:
        target = obj if obj is not None else cls()

        def bound(*args: Any, **kwargs: Any) -> Any:
            return self.func(target, *args, **kwargs)

        bound.__doc__ = self.func.__doc__
        return bound


class Image:
    """A container image: a base image reference plus optional build steps.

    Args:
        base_image: image reference, e.g. ``"127.0.0.1:5000/busybox:latest"`` or
            ``"jupyter/base-notebook:latest"``. ``None`` means ``$COVE_DEFAULT_IMAGE``.
        python_version: the python the image must have, e.g. ``"python3.11"`` (a build step
            the daemon checks).
        python_packages: packages to ``pip install``, or the path of a requirements file.
        commands: shell commands to run in the image, in order.
        env_vars: environment of the image; ``{"K": "V"}``, ``["K=V"]`` or ``"K=V"``.
            Without any build step they are passed to the pod's environment instead
            (the pod's own ``env`` wins).
    """

    def __init__(
        self,
        base_image: Optional[str] = None,
        python_version: Optional[str] = None,
        python_packages: Union[Sequence[str], str, None] = None,
        commands: Optional[Sequence[str]] = None,
        env_vars: Union[Dict[str, str], Sequence[str], str, None] = None,
    ) -> None:
        self.base_image = base_image
        self.python_version = python_version
        self.base_image_creds: Optional[Dict[str, str]] = None
        # Build steps in the order asked for, in the daemon's form: {"python_packages": [...]}, ...
        self.steps: List[Dict[str, Any]] = []
        self.env_vars: Dict[str, str] = {}
        if python_packages:
            self.add_python_packages(python_packages)
        if commands:
            self.add_commands(commands)
        if env_vars:
            self.with_envs(env_vars)

    def __repr__(self) -> str:
        return (
            f"Image(base_image={self.base_image!r}, python_version={self.python_version!r}, "
            f"steps={self.steps!r}, env_vars={self.env_vars!r})"
        )

    # ------------------------------------------------------------------ builder methods

    def add_python_packages(self, packages: Union[Sequence[str], str]) -> "Image":
        """Adds a ``pip install`` step; a string is the path of a requirements file."""
        if isinstance(packages, str):
            try:
                with open(packages, encoding="utf-8") as f:
                    lines = [ln.split("#", 1)[0].strip() for ln in f]
            except OSError as e:
                raise CoveError(f"cannot read python packages from {packages!r}: {e.strerror}") from None
            packages = [ln for ln in lines if ln]
        pkgs = [str(p) for p in packages]
        if pkgs:
            self.steps.append({"python_packages": pkgs})
        return self

    def add_commands(self, commands: Sequence[str]) -> "Image":
        """Adds a step running shell commands, in order."""
        if isinstance(commands, str):
            commands = [commands]
        cmds = [str(c) for c in commands]
        if cmds:
            self.steps.append({"commands": cmds})
        return self

    def with_envs(self, env_vars: Union[Dict[str, str], Sequence[str], str]) -> "Image":
        """Sets environment variables: ``{"K": "V"}``, ``["K=V", ...]`` or ``"K=V"``."""
        if isinstance(env_vars, str):
            env_vars = [env_vars]
        if isinstance(env_vars, dict):
            self.env_vars.update({str(k): str(v) for k, v in env_vars.items()})
        else:
            for item in env_vars:
                key, sep, value = str(item).partition("=")
                if not sep or not key:
                    raise CoveError(f"environment variable {item!r} is not KEY=VALUE")
                self.env_vars[key] = value
        return self

    @_hybridmethod
    def from_registry(self, image: str, credentials: Optional[Dict[str, str]] = None) -> "Image":
        """Uses ``image`` as the base image; ``credentials`` is ``{"username":..,"password":..}``
        for a private registry. Works on the class (``Image.from_registry("x")``) too."""
        self.base_image = image
        if credentials:
            self.base_image_creds = {
                "username": str(credentials.get("username", "")),
                "password": str(credentials.get("password", "")),
            }
        return self

    def add_local_path(self, local_path: str, remote_path: Optional[str] = None) -> "Image":
        """Adds a step copying ``local_path`` into the image (at ``remote_path``, default its name).

        A directory is sent like ``Pod(sync=True)`` (:mod:`cove.sync`: its ignore rules, and
        only the files the daemon lacks); a single file as a one-entry tar."""
        path = os.path.abspath(local_path)
        remote = remote_path or os.path.basename(path)
        if not remote.startswith("/"):
            remote = "/" + remote
        self.steps.append({"local_path": {"local": path, "remote": remote}})
        return self

    # ------------------------------------------------------------------ resolution

    def needs_build(self) -> bool:
        """Whether this image has build steps (or a python version) the daemon must build."""
        return bool(self.steps) or self.python_version is not None

    def reference(self) -> str:
        """The base image reference (``$COVE_DEFAULT_IMAGE`` when none was given)."""
        ref = self.base_image or os.environ.get("COVE_DEFAULT_IMAGE")
        if not ref:
            raise CoveError(
                "a pod needs an image: Pod(image=Image(base_image=...)) or set COVE_DEFAULT_IMAGE"
            )
        return ref

    def build_request(self) -> Dict[str, Any]:
        """The body of ``POST /v1/images/build`` (the daemon's ``BuildRequest``): steps are
        ``{"python_version": "3.11"}``, ``{"python_packages": [...]}``, ``{"commands": [...]}``."""
        steps: List[Dict[str, Any]] = []
        if self.python_version is not None:
            # Beam spells versions "python3.11"; the daemon wants "3.11" ("" = any python3).
            version = str(self.python_version).lower()
            for prefix in ("python", "py"):
                if version.startswith(prefix):
                    version = version[len(prefix):]
                    break
            steps.append({"python_version": "" if version == "3" else version})
        steps.extend(self.steps)
        body: Dict[str, Any] = {"base_image": self.reference(), "steps": steps, "env": dict(self.env_vars)}
        if self.base_image_creds:
            body["registry_auth"] = dict(self.base_image_creds)
        return body

    def resolve(
        self,
        client: Client,
        on_progress: Optional[ProgressFn] = None,
        on_log: Optional[ProgressFn] = None,
        extra_steps: Optional[List[Dict[str, Any]]] = None,
    ) -> str:
        """The reference a pod should run: the base image itself, or the result of a build.

        ``extra_steps`` are appended to the image's own steps (a pod's synced files).

        Raises:
            CoveUnsupportedError: build steps, but the daemon has no ``POST /v1/images/build``.
            CoveAPIError: the build failed (its message has the failing step's output).
        """
        if not self.needs_build() and not extra_steps:
            return self.reference()
        if not client.has_route("post", BUILD_ROUTE):
            raise CoveUnsupportedError(
                "image builds are not supported by this daemon yet: "
                f"{self._describe_steps()} need POST {BUILD_ROUTE}; "
                "use a ready-made image in Image(base_image=...)"
            )
        request = self.build_request()
        if any("local_path" in s for s in self.steps):
            from .sync import local_path_step

            steps = []
            for step in request["steps"]:
                lp = step.get("local_path") if isinstance(step, dict) else None
                if isinstance(lp, dict) and "local" in lp:
                    step = local_path_step(client, lp["local"], lp["remote"])
                steps.append(step)
            request["steps"] = steps
        request["steps"].extend(extra_steps or [])
        last = client.stream("POST", BUILD_ROUTE, request, on_progress, on_log)
        ref = _built_reference(last)
        if not ref:
            raise CoveError(f"the daemon's build answer names no image: {str(last)[:300]}")
        return ref

    def _describe_steps(self) -> str:
        what = []
        if self.python_version is not None:
            what.append(f"python_version={self.python_version!r}")
        for s in self.steps:
            what.extend(f"{k}={v!r}" for k, v in s.items())
        return ", ".join(what)


def _built_reference(last: Dict[str, Any]) -> Optional[str]:
    """The image reference in a build's final line: ``{"image": {"reference": ..}}``,
    ``{"image": "ref"}`` or ``{"reference": ..}``."""
    img = last.get("image")
    if isinstance(img, str):
        return img
    if isinstance(img, dict) and isinstance(img.get("reference"), str):
        return str(img["reference"])
    ref = last.get("reference")
    return ref if isinstance(ref, str) else None
