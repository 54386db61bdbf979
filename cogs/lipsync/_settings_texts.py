"""The words of `/lipsync-settings`: a member's own settings, as only they see them."""

from __future__ import annotations

from bot import words
from bot.store import MemberSettings
from cogs.texts import bold, describe


def settings_text(settings: MemberSettings, bot_max_fps: float, *, changed: bool) -> str:
    """The member's settings here, one per line, with how to change them."""
    mode = (
        describe("my_settings_mode_set", {"mode": settings.mode.value})
        if settings.mode is not None
        else describe("my_settings_mode_default")
    )
    fps = settings.max_fps if settings.max_fps is not None else bot_max_fps
    cap = describe(
        "my_settings_fps_set" if settings.max_fps is not None else "my_settings_fps_default",
        {"fps": words.decimal(fps, words.current())},
    )
    lines = [
        bold(describe("my_settings_saved" if changed else "my_settings_heading")),
        mode,
        cap,
        describe(f"my_settings_results_{settings.results.value}"),
        describe("my_settings_ping_on" if settings.ping else "my_settings_ping_off"),
        describe("my_settings_how"),
    ]
    return "\n".join(lines)
