"""The container's health probe: `python -m bot.ops.probe` exits 0 when `/healthz` answers 200.

Reads `METRICS_PORT` (default 9108, the Docker image's) and `METRICS_HOST` from the environment,
asks `http://<host>:<port>/healthz` and prints its verdict. A wildcard host (`0.0.0.0`, `::`,
unset) is asked on 127.0.0.1; a host bound to one address is asked there, where it listens.
Standard library only, so the probe starts fast and never imports the bot.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORT = 9108
_WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})  # noqa: S104 (recognised, not bound)


def healthz_url() -> str:
    """Where the bot's `/healthz` answers, from the same settings the bot serves it with."""
    port = int(os.environ.get("METRICS_PORT") or DEFAULT_PORT)
    host = os.environ.get("METRICS_HOST", "").strip()
    if host in _WILDCARDS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}:{port}/healthz"


def main() -> int:
    """0 when healthy, 1 otherwise (Docker's convention)."""
    url = healthz_url()
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (always http://, built above)
            sys.stdout.write(response.read().decode(errors="replace") + "\n")
            return 0
    except urllib.error.HTTPError as exc:
        sys.stdout.write(exc.read().decode(errors="replace") + "\n")
    except OSError as exc:
        sys.stdout.write(f"no answer from {url}: {exc}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
