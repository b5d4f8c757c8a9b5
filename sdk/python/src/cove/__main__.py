"""``python -m cove deploy app.py:pod``: create or update the deployment of a Pod."""

from __future__ import annotations

import sys
from typing import List, Optional

from .deploy_spec import load_pod
from .errors import CoveError

USAGE = "usage: python -m cove deploy FILE.py:NAME"


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "deploy":
        print(USAGE, file=sys.stderr)
        return 2
    try:
        result = load_pod(args[1]).deploy()
    except CoveError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    print()
    for port, url in sorted(result.urls.items()):
        print(f"✨ Deployment {result.name} (version {result.version}) port {port} at: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
