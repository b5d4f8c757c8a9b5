"""Exceptions raised by the SDK. Every one is a :class:`CoveError`."""

from __future__ import annotations

from typing import Optional


class CoveError(Exception):
    """Base class of every error the SDK raises; ``str(e)`` names the problem."""


class CoveConnectionError(CoveError):
    """The daemon could not be reached (wrong ``COVE_API_URL``, daemon not running, ...)."""


class CoveUnsupportedError(CoveError):
    """The daemon does not offer a feature this call needs (image builds, deployments, ...)."""


class CoveAPIError(CoveError):
    """The daemon answered with an error.

    Attributes:
        status: the HTTP status the daemon gave (400 bad input, 404 unknown, ...).
        message: the daemon's own message (its ``{"error": ...}`` body).
    """

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class CoveAuthError(CoveAPIError):
    """The daemon refused the API token (HTTP 401): set ``COVE_TOKEN``."""


class CoveBadRequestError(CoveAPIError):
    """The daemon refused the request's content (HTTP 400): bad port, cpu, image name, ..."""


class CoveNotFoundError(CoveAPIError):
    """Something the request names does not exist (HTTP 404): an image, a container, ..."""


class CoveConflictError(CoveAPIError):
    """The request conflicts with the daemon's state (HTTP 409)."""


class DeploySpecError(CoveError):
    """``app.py:pod`` could not be turned into a deployment request."""


def api_error(message: str, status: Optional[int]) -> CoveAPIError:
    """The :class:`CoveAPIError` subclass for an HTTP status."""
    cls = {
        400: CoveBadRequestError,
        401: CoveAuthError,
        404: CoveNotFoundError,
        409: CoveConflictError,
    }.get(status or 0, CoveAPIError)
    return cls(message, status)
