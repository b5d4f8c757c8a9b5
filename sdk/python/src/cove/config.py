"""Where the daemon is and how to authenticate: the same settings as the ``cove`` CLI."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

DEFAULT_API_URL = "http://127.0.0.1:7310"
DEFAULT_DATA_DIR = "/var/lib/cove"


@dataclass(frozen=True)
class Config:
    """Connection settings.

    Attributes:
        api_url: base URL of the daemon's API (``COVE_API_URL``, default ``http://127.0.0.1:7310``).
        token: the API token (``COVE_TOKEN``, else the file ``$COVE_DATA_DIR/token``,
            default ``/var/lib/cove/token``); ``None`` if neither is available.
        timeout: seconds to wait for the daemon to answer a request (a streamed create may take
            longer in total: the timeout applies to each read).
    """

    api_url: str = DEFAULT_API_URL
    token: Optional[str] = None
    timeout: float = 600.0

    @classmethod
    def from_env(cls) -> "Config":
        """Settings from the environment, like the CLI reads them."""
        api_url = os.environ.get("COVE_API_URL") or DEFAULT_API_URL
        token = os.environ.get("COVE_TOKEN") or None
        if token is None:
            data_dir = os.environ.get("COVE_DATA_DIR") or DEFAULT_DATA_DIR
            try:
                with open(os.path.join(data_dir, "token"), encoding="utf-8") as f:
                    token = f.read().strip() or None
            except OSError:
                token = None
        return cls(api_url=api_url.rstrip("/"), token=token)
