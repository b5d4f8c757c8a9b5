"""Beam-compatible names for Cove's SDK: ``from beam import Image, Pod`` runs against Cove."""

from cove import *  # noqa: F401,F403
from cove import __all__  # noqa: F401
