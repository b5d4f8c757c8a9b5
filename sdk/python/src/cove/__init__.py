"""Cove's Python SDK: launch pods on a Cove daemon, the way Beam's Pods guide shows.

    from cove import Image, Pod

    pod = Pod(image=Image(base_image="127.0.0.1:5000/busybox:latest"), ports=[8000],
              entrypoint=["httpd", "-f", "-p", "8000", "-h", "/www"])
    nb = pod.create()          # prints "=> Creating container" ... as the daemon works
    print(nb.url)
    pod.terminate()

The daemon is found through ``COVE_API_URL`` (default ``http://127.0.0.1:7310``) and
``COVE_TOKEN`` (default: ``$COVE_DATA_DIR/token``, ``/var/lib/cove/token``).
``from beam import Image, Pod`` gives the same classes.
"""

from .client import Client
from .config import Config
from .deployment import DeploymentInstance
from .errors import (
    CoveAPIError,
    CoveAuthError,
    CoveBadRequestError,
    CoveConflictError,
    CoveConnectionError,
    CoveError,
    CoveNotFoundError,
    CoveUnsupportedError,
    DeploySpecError,
)
from .image import Image
from .pod import Pod, PodInstance

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Config",
    "CoveAPIError",
    "CoveAuthError",
    "CoveBadRequestError",
    "CoveConflictError",
    "CoveConnectionError",
    "CoveError",
    "CoveNotFoundError",
    "CoveUnsupportedError",
    "DeploySpecError",
    "DeploymentInstance",
    "Image",
    "Pod",
    "PodInstance",
]
