"""The container's health probe: `python -m bot.ops.probe` exits 0 when `/healthz` answers 200.

It reads the same settings the bot serves `/healthz` with (`Settings`: the environment, then
`.env` in the working directory, empty values meaning "not set"), so the probe asks exactly where
the bot listens: an `--env-file` that sets or blanks `METRICS_PORT` moves or stops both together.
A wildcard host (`0.0.0.0`, `::`) is asked on 127.0.0.1; a host bound to one address is asked
there. With metrics off there is no `/healthz`, and the probe says so rather than guessing a port.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from pydantic import ValidationError

from bot.config import Settings

_WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})  # noqa: S104 (recognised, not bound)


def healthz_url(settings: Settings | None = None) -> str | None:
    """Where the bot's `/healthz` answers, from the settings it serves it with; None with metrics off."""
    settings = settings if settings is not None else Settings()
    if settings.metrics_port is None:
        return None
    host = settings.metrics_host.strip()
    if host in _WILDCARDS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}:{settings.metrics_port}/healthz"


def main() -> int:
    """0 when healthy, 1 otherwise (Docker's convention), with the reason on stdout."""
    try:
        url = healthz_url()
    except ValidationError as exc:
        sys.stdout.write(f"the bot's settings are invalid, so it isn't running: {exc.error_count()} error(s)\n")
        return 1
    if url is None:
        sys.stdout.write(
            "METRICS_PORT is empty, so the bot serves no /healthz: set METRICS_PORT (the Docker image "
            "uses 9108), or run the container with --no-healthcheck\n"
        )
        return 1
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
