"""``python3 -m cove.deploy_spec app.py:pod``: print the deployment request of a ``Pod``.

Imports ``app.py`` (relative to the current directory), takes the :class:`~cove.Pod` named
``pod`` and prints its ``POST /v1/pods`` body (``CreatePodRequest``, with ``name``) as JSON on
stdout. An image with build steps, or a pod that syncs files (no ``image``, or ``sync=True``: the
current directory goes to ``/app``), is built on the daemon first (``COVE_API_URL``,
``COVE_TOKEN``) and the request names the built image; the build's progress goes to stderr. Any problem (missing file, syntax error, no such object, not a Pod, no name) is one
line on stderr (the message alone, no ``Error:`` prefix) and exit status 1. The Rust ``cove deploy app.py:pod`` runs this.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import traceback
from typing import Any, Dict, List, Optional

from .errors import CoveError, DeploySpecError
from .pod import Pod


def load_pod(target: str) -> Pod:
    """The ``Pod`` that ``file.py:name`` names (imports the file as a module).

    Raises:
        DeploySpecError: the file is missing or fails to import, or the name is not a Pod.
    """
    path, sep, attr = target.rpartition(":")
    if not sep or not path or not attr:
        raise DeploySpecError(f"expected FILE.py:NAME (e.g. app.py:pod), got {target!r}")
    full = os.path.abspath(path)
    if not os.path.isfile(full):
        raise DeploySpecError(f"{path}: no such file")
    module_name = os.path.splitext(os.path.basename(full))[0] or "app"
    directory = os.path.dirname(full)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(module_name, full)
    if spec is None or spec.loader is None:
        raise DeploySpecError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise DeploySpecError(f"{path}:{e.lineno}: syntax error: {e.msg}") from None
    except SystemExit as e:
        raise DeploySpecError(f"{path}: exited while being imported (status {e.code})") from None
    except BaseException as e:  # noqa: BLE001 - any failure of user code is reported, not raised
        where = _user_frame(e, full)
        raise DeploySpecError(f"{path}{where}: importing failed: {type(e).__name__}: {e}") from None
    if not hasattr(module, attr):
        raise DeploySpecError(f"{path} has no object named {attr!r}")
    obj = getattr(module, attr)
    if not isinstance(obj, Pod):
        raise DeploySpecError(f"{path}:{attr} is a {type(obj).__name__}, not a Pod")
    return obj


def _user_frame(e: BaseException, full: str) -> str:
    line = ""
    for fs in traceback.extract_tb(e.__traceback__):
        if os.path.abspath(fs.filename) == full:
            line = f":{fs.lineno}"
    return line


def deploy_request(pod: Pod) -> Dict[str, Any]:
    """The request body of a deployment of ``pod`` (it must have a name).

    An image with build steps is built first, on the daemon the environment names.
    """
    if not pod.name:
        raise DeploySpecError("a deployment needs a name: Pod(name=...)")
    if pod.sync:
        # As Pod.deploy(): a pod without an image (or with sync=True) gets the current
        # directory uploaded and built in at /app, where its entrypoint runs.
        reference = pod._resolve(_progress_to_stderr, _log_to_stderr)
        return pod.request_body(reference, synced=True)
    if pod.image.needs_build():
        # A CreatePodRequest names an image, not build steps: build it now on the daemon
        # (COVE_API_URL/COVE_TOKEN, as `cove deploy` has them; cached when unchanged) and
        # name the result. Its progress goes to stderr.
        reference = pod.image.resolve(pod.client, _progress_to_stderr, _log_to_stderr)
        return pod.request_body(reference)
    return pod.request_body()


def _progress_to_stderr(msg: str) -> None:
    # `cove deploy` shows "=> " lines as its own progress.
    print(f"=> {msg}", file=sys.stderr, flush=True)


def _log_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python3 -m cove.deploy_spec FILE.py:NAME", file=sys.stderr)
        return 1 if not args or args[0] not in ("-h", "--help") else 0
    try:
        body = deploy_request(load_pod(args[0]))
    except CoveError as e:
        # No "Error:" prefix: `cove deploy` prints this line as its own error.
        print(str(e), file=sys.stderr)
        return 1
    json.dump(body, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
