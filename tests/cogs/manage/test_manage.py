"""`/lipsync-admin`: managers set limits and modes and see usage; nobody else can."""

from __future__ import annotations

import csv
import io

import discord
import pytest
import simcord
from PIL import Image

from bot.config import GenerationMode
from bot.store import JobState, LimitKind
from tests.cogs.conftest import CHART_SETTLE_TIMEOUT, Harness


async def admin(harness: Harness, who: simcord.MemberActor, sub: str, **options: object) -> str:
    """Run `/lipsync-admin <sub>`; return the (ephemeral) answer."""
    result = await who.slash(harness.channel, f"lipsync-admin {sub}", **options)
    assert result.ephemeral and result.response is not None
    return result.response.content


async def test_hidden_from_members_by_default(harness: Harness) -> None:
    """Discord shows the group only to Manage Server holders (the default a server can change)."""
    [group] = [c for c in await harness.bot.tree.fetch_commands() if c.name == "lipsync-admin"]
    assert group.default_member_permissions == discord.Permissions(manage_guild=True)
    assert "lipsync-admin usage" not in harness.alice.available_commands(harness.channel)
    assert "lipsync-admin usage" in harness.manager.available_commands(harness.channel)


CAN_T_SEE = "Only members with the Manage Server permission can see this server's lip-sync settings and usage."
CAN_T_CHANGE = "Only members with the Manage Server permission can change lip-sync settings."


@pytest.mark.parametrize(
    ("sub", "options", "refusal"),
    [
        ("usage", {}, CAN_T_SEE),
        ("settings", {}, CAN_T_SEE),
        ("server-limit", {"credits": 5}, CAN_T_CHANGE),
        ("modes", {"lite": True, "standard": False, "pro": False}, CAN_T_CHANGE),
    ],
)
async def test_refused_at_run_time_when_a_server_overrides_the_default(
    harness: Harness, sub: str, options: dict[str, object], refusal: str
) -> None:
    """Even if the server lets everyone see the commands, members without Manage Server are refused.

    A command that only shows things is refused as such, not as a change.
    """
    [group] = [c for c in await harness.bot.tree.fetch_commands() if c.name == "lipsync-admin"]
    harness.guild.set_command_permissions(group, {harness.guild.default_role: True})
    answer = await admin(harness, harness.alice, sub, **options)
    assert answer == refusal
    settings = await harness.store.limits.guild_settings(harness.guild.id)
    assert settings.default_member_credits is None and settings.allowed_modes is None


async def test_member_role_and_server_limits(harness: Harness) -> None:
    """Limits a manager sets are what members' balances follow, most specific first."""
    vip = harness.guild.create_role("VIP")
    carol = harness.guild.add_member(harness.env.create_user("carol"), roles=[vip])
    said = await admin(harness, harness.manager, "server-limit", credits=100)
    assert said == "Members here now get 100 credits per day by default."
    said = await admin(harness, harness.manager, "role-limit", role=vip, credits=300)
    assert said == f"Members with <@&{vip.id}> may now use 300 credits per day."
    said = await admin(harness, harness.manager, "member-limit", member=harness.alice, credits=50)
    assert said == f"<@{harness.alice.id}> may now use 50 credits per day."

    alice = await harness.store.quota.limits(harness.guild.id, harness.alice.id)
    bob = await harness.store.quota.limits(harness.guild.id, harness.bob.id)
    carol_balance = await harness.store.quota.limits(harness.guild.id, carol.id, [vip.id])
    assert (alice.allowance, alice.limit_kind) == (50, LimitKind.MEMBER)
    assert (bob.allowance, bob.limit_kind) == (100, LimitKind.SERVER_DEFAULT)
    assert (carol_balance.allowance, carol_balance.limit_kind) == (300, LimitKind.ROLE)

    said = await admin(harness, harness.manager, "member-limit", member=harness.alice)
    assert said == f"<@{harness.alice.id}> now follows the role and server limits."
    assert (await harness.store.quota.limits(harness.guild.id, harness.alice.id)).allowance == 100
    said = await admin(harness, harness.manager, "member-limit", member=harness.alice)
    assert said == f"<@{harness.alice.id}> had no limit of their own."  # named, not "They had no limit."

    await admin(harness, harness.manager, "member-limit", member=harness.bob, credits=12_500)
    await admin(harness, harness.manager, "max-clip", seconds=30.0)
    overview = await admin(harness, harness.manager, "settings")
    assert overview.splitlines() == [
        "**Lip-sync settings for this server**",
        "Member allowance: 100 credits per day (set here)",
        "Server pool: none",
        "Modes: lite, standard, pro (bot default)",
        "Longest clip: 30 s (set here)",
        "Jobs at a time per member: 1 (bot default)",
        f"Role limits: <@&{vip.id}>: 300 credits per day",
        f"Member limits: <@{harness.bob.id}>: 12,500 credits per day",
    ]


async def test_grant_adds_credits_until_the_reset(harness: Harness) -> None:
    """A grant raises one member's credits for the current period and says when that ends."""
    await harness.store.limits.set_member_limit(harness.guild.id, harness.alice.id, 10)
    said = await admin(harness, harness.manager, "grant", member=harness.alice, credits=40, note="contest winner")
    assert said.startswith(f"Granted 40 credits to <@{harness.alice.id}> for this period (it resets <t:")
    assert said.endswith("they have 50 credits left.")
    zero = await admin(harness, harness.manager, "grant", member=harness.alice, credits=0)
    assert zero == "Granting 0 credits changes nothing."


async def test_modes_and_longest_clip_apply_to_lipsync(harness: Harness) -> None:
    """What a manager allows is what `/lipsync` accepts."""
    assert await admin(harness, harness.manager, "modes", lite=False, standard=False, pro=False) == (
        "Allow at least one mode."
    )
    said = await admin(harness, harness.manager, "modes", lite=True, standard=False, pro=True)
    assert said == "Members here may now use: lite, pro."
    said = await admin(harness, harness.manager, "max-clip", seconds=1.0)
    assert said == "The longest clip here is now 1 s."
    too_long = await admin(harness, harness.manager, "max-clip", seconds=600.0)
    assert too_long == "The bot allows at most 1:00; choose that or less."

    standard = await harness.lipsync(mode=GenerationMode.STANDARD.value)
    assert standard.response is not None and "Allowed here: lite, pro." in standard.response.content
    long_clip = await harness.lipsync(start=0.0, end=1.5)
    assert long_clip.response is not None and "longest clip allowed here is 1 s" in long_clip.response.content


@pytest.mark.env(settle_timeout=CHART_SETTLE_TIMEOUT)
@pytest.mark.usefixtures("chart_ready")
async def test_usage_report(harness: Harness) -> None:
    """Managers see what was used this period, by member and by mode."""
    await harness.lipsync()
    job = await harness.latest_job()
    assert (await harness.finish(job.id)).state is JobState.DONE
    report = await admin(harness, harness.manager, "usage")
    assert "Total: 45 credits used · 1 job." in report
    assert f"• <@{harness.alice.id}>: 45 credits used · 1 job" in report
    assert "By mode: lite: 45 credits" in report
    assert "Unknown at Magic Hour" not in report


@pytest.mark.env(settle_timeout=CHART_SETTLE_TIMEOUT)
@pytest.mark.usefixtures("chart_ready")
async def test_usage_attaches_a_chart_and_a_csv(harness: Harness) -> None:
    """The usage answer lists grants, take-backs and the pool's remainder, with the chart and CSV attached."""
    await admin(harness, harness.manager, "server-pool", credits=1_000)
    await admin(harness, harness.manager, "grant", member=harness.bob, credits=30)
    await admin(harness, harness.manager, "grant", member=harness.bob, credits=-10)
    await harness.lipsync()
    assert (await harness.finish((await harness.latest_job()).id)).state is JobState.DONE

    result = await harness.manager.slash(harness.channel, "lipsync-admin usage")
    assert result.ephemeral and result.response is not None
    text = result.response.content
    assert "Total: 45 credits used · 1 job · 30 credits granted · 10 credits taken back." in text
    assert "Server pool: 955 credits of 1,000 credits left today." in text
    assert f"• <@{harness.bob.id}>: 0 credits used · 0 jobs · 30 credits granted · 10 credits taken back" in text
    files = {a.filename.rsplit(".", 1)[1]: a for a in result.response.attachments}
    assert sorted(files) == ["csv", "png"]
    image = Image.open(io.BytesIO(await files["png"].read()))
    assert image.format == "PNG"
    table = list(csv.reader(io.StringIO((await files["csv"].read()).decode("utf-8-sig"))))
    today = harness.store.quota.window()[0].date().isoformat()
    alice = table[0].index(f"alice ({harness.alice.id})")
    assert table[-1][0] == today and table[-1][alice] == "45" and table[-1][-1] == "955"
    assert all(len(row) == len(table[0]) for row in table)


async def test_a_members_figures_on_one_screen(harness: Harness) -> None:
    """`member` shows the balance in the member's own words, the limits and their sources, jobs and grants."""
    await admin(harness, harness.manager, "grant", member=harness.alice, credits=100, note="winner `x`")
    await harness.lipsync()
    assert (await harness.finish((await harness.latest_job()).id)).state is JobState.DONE
    await admin(harness, harness.manager, "grant", member=harness.alice, credits=-20_000)

    screen = await admin(harness, harness.manager, "member", member=harness.alice)
    quota = await harness.alice.slash(harness.channel, "quota")
    assert quota.response is not None
    balance = quota.response.content.splitlines()[1:-1]  # between the heading and the prices
    lines = screen.splitlines()
    assert lines[0] == f"**Lip-sync credits of <@{harness.alice.id}>**"
    assert lines[1 : 1 + len(balance)] == balance
    assert "Taken back this period: 10,055 credits." in balance  # 10,000 + 100 - 45 unspent
    assert "Extra granted this period: 100 credits." in balance
    assert "Server pool: none." in lines and "Jobs at a time: 1, the operator's." in lines
    assert "Running jobs: none." in lines
    grants = lines[lines.index("Grants and take-backs this period:") + 1 :]
    assert grants[0].startswith(f"• 10,055 credits taken back by <@{harness.manager.id}> <t:")
    assert grants[1].startswith(f"• 100 credits granted by <@{harness.manager.id}> <t:")
    assert grants[1].endswith(" — note: `winner ˋxˋ`")


@pytest.mark.settings(max_active_jobs_per_member=3)
async def test_max_jobs(harness: Harness) -> None:
    """A manager can let members run fewer jobs at a time than the operator does, never more."""
    more = await admin(harness, harness.manager, "max-jobs", count=4)
    assert more == "The bot allows at most 3 jobs per member at a time; choose that or less."
    said = await admin(harness, harness.manager, "max-jobs", count=2)
    assert said == "Each member may now run 2 jobs at a time."
    harness.sandbox.config.render_seconds = 120
    await harness.lipsync()
    await harness.lipsync()
    jobs = await harness.store.jobs.recent_for_member(harness.guild.id, harness.alice.id)
    assert len(jobs) == 2  # both were taken: neither was refused at once


@pytest.mark.settings(allowed_modes=[GenerationMode.LITE, GenerationMode.STANDARD])
async def test_modes_the_operator_does_not_offer_are_refused(harness: Harness) -> None:
    """A manager chooses among the operator's modes: pro, which the operator left out, is refused."""
    said = await admin(harness, harness.manager, "modes", lite=True, standard=False, pro=True)
    assert said == "The bot's operator offers only lite, standard, so pro can't be allowed here."
    pro = await harness.lipsync(mode=GenerationMode.PRO.value)
    assert pro.response is not None and "Allowed here: lite, standard." in pro.response.content


async def test_numbers_past_their_bounds_never_reach_the_bot(harness: Harness) -> None:
    """Every number option declares its bound: Discord refuses beyond it, before the bot is asked."""
    too_many = 10**12 + 1
    for sub, options in (
        ("server-pool", {"credits": too_many}),
        ("grant", {"member": harness.alice, "credits": -too_many}),
        ("max-clip", {"seconds": 2000.5}),
        ("max-jobs", {"count": 1001}),
    ):
        with pytest.raises(simcord.OptionError):
            await harness.manager.slash(harness.channel, f"lipsync-admin {sub}", **options)
    assert (await harness.store.limits.guild_settings(harness.guild.id)).pool_credits is None
