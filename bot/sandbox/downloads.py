"""Download URLs for a finished project's result, as a status read or a webhook carries them."""

from __future__ import annotations

import math

from bot.sandbox.projects import Project
from bot.sandbox.state import SandboxState
from bot.sandbox.timefmt import iso_from_unix


def download_urls(state: SandboxState, project: Project) -> list[dict[str, str]]:
    """A freshly signed download URL for a complete, enabled project; none otherwise."""
    if project.result is None or not project.enabled or project.final_status is None:
        return []
    expires = math.ceil(state.now_unix() + state.config.download_url_ttl)
    path = f"/download/{project.id}/{project.output_name}"
    url = state.signer.sign(state.storage_url, "GET", path, expires)
    return [{"url": url, "expires_at": iso_from_unix(expires)}]
