"""The usage picture managers get with `/lipsync-admin usage`: a chart (PNG) and the same figures as CSV.

Both are made from one `DailyUsage` (`bot.store.daily`), so the picture and the file agree with
each other and with the ledger. matplotlib is imported inside `draw_png`, never at module import,
so the bot's startup doesn't pay for it; `usage_files` draws in a worker thread, so the event loop
keeps serving other members while a chart is drawn. The figure is built with matplotlib's
object API and its Agg canvas (no pyplot, no global figure state), which is safe in a thread.

Names are members' own: in the CSV a name that a spreadsheet would read as a formula is quoted
as text, and in the chart it is drawn as plain text (no math markup, no hidden legend entries).
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Container, Mapping
from dataclasses import dataclass

from bot.store import DailyUsage
from cogs.texts._style import describe

# The chart stacks this many members by name; the rest share one bar ("others").
CHART_MEMBERS = 8
_LABEL_CHARS = 32
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Series:
    """One stacked series of the chart: its label and its credits per day."""

    label: str
    credits: tuple[int, ...]


def chart_series(daily: DailyUsage, labels: Mapping[int | None, str]) -> list[Series]:
    """The chart's bars: the top members by credits, then everyone else as one series.

    Every member's credits are in exactly one series, so each day's stack is that day's total.
    """
    named = [member for member in daily.by_member if member is not None]
    shown = named[:CHART_MEMBERS]
    series = [Series(labels.get(member, str(member)), daily.by_member[member]) for member in shown]
    rest = [daily.by_member[m] for m in daily.by_member if m not in shown]
    if rest:
        others = tuple(sum(values) for values in zip(*rest, strict=True))
        only_deleted = len(rest) == 1 and None in daily.by_member and len(named) <= CHART_MEMBERS
        code = "usage_deleted_members" if only_deleted else "chart_others"
        series.append(Series(describe(code), others))
    return series


def _plain(label: str, drawable: Container[int]) -> str:
    """A label as the chart draws it: short, a character the font lacks as "?", never hidden."""
    label = label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"
    label = "".join(c if ord(c) in drawable else "?" for c in label)
    # A leading underscore hides a legend entry in matplotlib; a leading space keeps it shown.
    return f" {label}" if label.startswith("_") else label


def draw_png(daily: DailyUsage, labels: Mapping[int | None, str]) -> bytes:
    """The chart as PNG bytes: credits per UTC day, stacked by member, and the pool's remainder as a line."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties, findfont, get_font

    days = [day.isoformat() for day in daily.days]
    positions = list(range(len(days)))
    with rc_context({"text.parse_math": False, "text.usetex": False}):
        # Members' names may hold emoji the font lacks: drawn as "?" rather than warned about.
        drawable = set(get_font(findfont(FontProperties())).get_charmap())
        figure = Figure(figsize=(10, 5), dpi=100, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        bottom = [0] * len(days)
        for item in chart_series(daily, labels):
            axes.bar(positions, item.credits, bottom=bottom, label=_plain(item.label, drawable))
            bottom = [b + c for b, c in zip(bottom, item.credits, strict=True)]
        if daily.pool_left is not None:
            pool_label = describe("chart_pool_left")
            axes.plot(positions, daily.pool_left, color="black", marker="o", label=pool_label)
        axes.set_title(describe("chart_title"))
        axes.set_ylabel(describe("chart_credits"))
        axes.set_xticks(positions, days, rotation=45, ha="right", fontsize=8)
        axes.set_ylim(bottom=0)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc="upper left", fontsize=8)
        out = io.BytesIO()
        figure.savefig(out, format="png")
    return out.getvalue()


def _cell(text: str) -> str:
    """A member's name as a CSV cell a spreadsheet shows as text, never runs as a formula."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def csv_text(daily: DailyUsage, labels: Mapping[int | None, str]) -> str:
    """The chart's figures as CSV: one row per UTC day, a column per member, the total, the pool's remainder."""
    members = list(daily.by_member)
    header = [describe("csv_day")]
    for member in members:
        if member is None:
            header.append(describe("usage_deleted_members"))
        else:
            name = labels.get(member)
            header.append(_cell(f"{name} ({member})" if name else str(member)))
    header.append(describe("csv_total"))
    if daily.pool_left is not None:
        header.append(describe("chart_pool_left"))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    totals = daily.totals
    for i, day in enumerate(daily.days):
        row: list[object] = [day.isoformat(), *(daily.by_member[m][i] for m in members), totals[i]]
        if daily.pool_left is not None:
            row.append(daily.pool_left[i])
        writer.writerow(row)
    return out.getvalue()


async def usage_files(daily: DailyUsage, labels: Mapping[int | None, str]) -> tuple[bytes, bytes]:
    """The PNG chart (drawn in a worker thread) and the CSV (UTF-8 with a BOM, for spreadsheets)."""
    png = await asyncio.to_thread(draw_png, daily, labels)
    return png, ("\ufeff" + csv_text(daily, labels)).encode()
