"""Media files: what is in them (PyAV), whether their names lie, what they cost, and fitting them
under an upload limit (ffmpeg).

Everything that touches a member's file runs off the event loop, FFmpeg's reading of it in a
bounded child on an allow-list (`bot.media.bounded`, `bot.media.accept`); nothing reads a whole
file into memory. Compressing and pricing are imported on first use, so the probe's child process,
which needs only the reading modules, starts without the rest (ffmpeg helpers, pydantic settings).
docs/design-notes.md, "Media", gives the reasons.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bot.media.probe import MediaError, MediaInfo, RateVerdict, probe, probe_audio, probe_video
from bot.media.sniff import extension_matches, sniff_kind

if TYPE_CHECKING:
    from bot.media.compress import compress_to_fit
    from bot.media.credits import DEFAULT_FPS, billing_fps, estimate_credits, frame_cap, queue_hold_credits
    from bot.media.thumbnail import first_frame

_HOMES = {
    "compress_to_fit": "compress",
    "first_frame": "thumbnail",
    **dict.fromkeys(("DEFAULT_FPS", "billing_fps", "estimate_credits", "frame_cap", "queue_hold_credits"), "credits"),
}


def __getattr__(name: str) -> Any:  # noqa: ANN401 - whatever the named module exports
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = [
    "DEFAULT_FPS",
    "MediaError",
    "MediaInfo",
    "RateVerdict",
    "billing_fps",
    "compress_to_fit",
    "estimate_credits",
    "extension_matches",
    "first_frame",
    "frame_cap",
    "probe",
    "probe_audio",
    "probe_video",
    "queue_hold_credits",
    "sniff_kind",
]
