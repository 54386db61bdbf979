"""The usage chart and its CSV: the same figures as the ledger's, a real PNG, names that stay names."""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
import sys

import pytest
from PIL import Image

from bot import words
from bot.store import DailyUsage
from cogs.manage._chart import CHART_MEMBERS, chart_series, csv_text, draw_png, usage_files

# A name with glyphs the font lacks must not make matplotlib warn on every chart.
pytestmark = pytest.mark.filterwarnings("error::UserWarning")

DAYS = tuple(dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(3))


def usage(members: int, *, pool: bool = True) -> DailyUsage:
    by_member: dict[int | None, tuple[int, ...]] = {m: (m, 2 * m, 0) for m in range(members, 0, -1)}
    by_member[None] = (5, 0, 1)
    return DailyUsage(
        days=DAYS,
        by_member=by_member,
        pool_limit=1000 if pool else None,
        pool_left=(900, 700, 650) if pool else None,
    )


def test_every_members_credits_are_in_the_chart_once() -> None:
    """Each day's stack is that day's total: the top members by name, everyone else as "others"."""
    for members in (1, CHART_MEMBERS, CHART_MEMBERS + 5):
        daily = usage(members)
        series = chart_series(daily, {})
        stacked = tuple(sum(item.credits[i] for item in series) for i in range(len(DAYS)))
        assert stacked == daily.totals
        assert len(series) <= CHART_MEMBERS + 1
    assert chart_series(usage(2), {})[-1].label == "deleted members"
    assert chart_series(usage(CHART_MEMBERS + 1), {})[-1].label == "others"


def test_the_chart_is_a_png() -> None:
    """PIL reads what `draw_png` makes, at the size drawn, whatever the members are called."""
    labels: dict[int | None, str] = {1: "_hidden", 2: "$\\frac{1}{0$", 3: "ünïcødé 🎬", 4: "x" * 200}
    for daily in (usage(4), usage(4, pool=False), DailyUsage(DAYS, {}, None, None)):
        with words.using("es"):
            image = Image.open(io.BytesIO(draw_png(daily, labels)))
        image.verify()
        assert (image.format, image.size) == ("PNG", (1000, 500))


def test_the_csv_has_the_charts_figures() -> None:
    """One row per UTC day, a column per member, the total and the pool's remainder."""
    daily = usage(2)
    rows = list(csv.reader(io.StringIO(csv_text(daily, {1: "alice", 2: '=HYPERLINK("x")'}))))
    assert rows[0] == ["day (UTC)", '\'=HYPERLINK("x") (2)', "alice (1)", "deleted members", "total", "pool left"]
    assert daily.pool_left is not None
    members = (2, 1, None)
    assert rows[1:] == [
        [day.isoformat(), *(str(daily.by_member[m][i]) for m in members), str(daily.totals[i]), str(daily.pool_left[i])]
        for i, day in enumerate(DAYS)
    ]


async def test_files_are_drawn_off_the_event_loop() -> None:
    """`usage_files` gives the PNG and a CSV with a byte-order mark (spreadsheets then read UTF-8)."""
    with words.using("pt-BR"):
        png, table = await usage_files(usage(1), {1: "añá"})
    assert png.startswith(b"\x89PNG") and table.startswith("\ufeff".encode())
    assert "dia (UTC)" in table.decode() and "añá (1)" in table.decode()


def test_starting_the_bot_does_not_import_matplotlib() -> None:
    """matplotlib is imported when the first chart is drawn, not when the bot and its cogs load."""
    code = "import sys, bot.app, bot.__main__, cogs.manage; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
