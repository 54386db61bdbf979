"""Media files: what is in them (PyAV), whether their names lie, what they cost, and fitting them
under an upload limit (ffmpeg).

Everything that touches a file runs off the event loop (a worker thread for PyAV, a subprocess for
ffmpeg), and nothing reads a whole file into memory.
"""

from __future__ import annotations

from bot.media.compress import compress_to_fit
from bot.media.credits import DEFAULT_FPS, estimate_credits
from bot.media.probe import MediaError, MediaInfo, probe, probe_audio, probe_video
from bot.media.sniff import extension_matches, sniff_kind

__all__ = [
    "DEFAULT_FPS",
    "MediaError",
    "MediaInfo",
    "compress_to_fit",
    "estimate_credits",
    "extension_matches",
    "probe",
    "probe_audio",
    "probe_video",
    "sniff_kind",
]
