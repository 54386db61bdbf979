"""The container's health probe: `python -m bot.ops.probe` exits 0 when `/healthz` answers 200.

Reads `METRICS_PORT` (default 9108, the Docker image's) from the environment, asks
`http://127.0.0.1:<port>/healthz` and prints its verdict. Standard library only, so the probe
starts fast and never imports the bot.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORT = 9108


def main() -> int:
    """0 when healthy, 1 otherwise (Docker's convention)."""
    port = int(os.environ.get("METRICS_PORT") or DEFAULT_PORT)
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            sys.stdout.write(response.read().decode(errors="replace") + "\n")
            return 0
    except urllib.error.HTTPError as exc:
        sys.stdout.write(exc.read().decode(errors="replace") + "\n")
    except OSError as exc:
        sys.stdout.write(f"no answer from {url}: {exc}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
