"""`rules_for`: a server's own settings narrow the operator's rules, never widen them."""

from __future__ import annotations

import pytest

from bot.config import GenerationMode
from bot.errors import InvalidInput
from bot.jobs.admission import rules_for
from bot.jobs.models import GuildRules, InputSource, JobRequest
from bot.jobs.validation import check_request
from bot.store import GuildSettings

LITE, STANDARD, PRO = GenerationMode.LITE, GenerationMode.STANDARD, GenerationMode.PRO
OPERATOR = GuildRules(allowed_modes=(LITE, STANDARD), max_clip_seconds=60.0, max_input_bytes=1_000)


def test_a_server_narrows_the_operators_rules() -> None:
    """The server's modes within the operator's, and the shorter of the two longest clips."""
    rules = rules_for(OPERATOR, GuildSettings(1, allowed_modes=(STANDARD,), max_clip_seconds=10.0))
    assert (rules.allowed_modes, rules.max_clip_seconds) == ((STANDARD,), 10.0)
    assert rules_for(OPERATOR, GuildSettings(1)) == OPERATOR
    assert rules_for(OPERATOR, None) == OPERATOR


def test_a_server_setting_from_before_the_operator_narrowed_does_not_widen() -> None:
    """A mode the operator no longer offers, or a longer clip than the operator's, does not apply."""
    rules = rules_for(OPERATOR, GuildSettings(1, allowed_modes=(LITE, PRO), max_clip_seconds=600.0))
    assert (rules.allowed_modes, rules.max_clip_seconds) == ((LITE,), 60.0)


def test_no_mode_in_common_refuses_every_request_clearly() -> None:
    """When the server's modes and the operator's no longer meet, members are told why, not 'allowed: none'."""
    rules = rules_for(OPERATOR, GuildSettings(1, allowed_modes=(PRO,)))
    assert rules.allowed_modes == ()
    request = JobRequest(
        user_id=1,
        guild_id=1,
        video=InputSource(filename="face.mp4", size=10),
        audio=InputSource(filename="voice.mp3", size=10),
        mode=LITE,
    )
    with pytest.raises(InvalidInput) as refused:
        check_request(request, rules)
    assert refused.value.code == "no_modes_here"
