"""What a job cost and what a member has left, stated one way everywhere."""

from __future__ import annotations

from bot.config import QuotaWindow
from bot.jobs.quote import Quote, quote_of
from bot.store import SETTLED_STATES, EffectiveLimits, JobRecord, LimitKind
from cogs.texts._style import EN, describe


def quote_text(quote: Quote, lang: str = EN) -> str:
    """A job's price before it ends, in the one sentence every surface uses: likely cost and hold."""
    code, data = quote.sentence()
    return describe(code, data, lang)


def cost_text(job: JobRecord, lang: str = EN) -> str:
    """What a job costs, as a sentence: its quote while it runs, then what the ledger settled.

    Done: the charge. Failed or canceled: 0 with "refunded" when it cost nothing, else Magic Hour's
    charge, or (fate unknown at Magic Hour) what is counted as spent until the operator checks;
    once they have (`lipsync-bot reconcile`), the charge Magic Hour reported.
    """
    charged = job.charged_credits or 0
    if job.state in SETTLED_STATES:  # rendered: settled to Magic Hour's charge, being delivered or done
        return describe("cost_charged", {"charged": charged}, lang)
    if not job.state.terminal:
        quote = quote_of(job)
        if quote is None:
            return describe("cost_estimate_pending", lang=lang)
        return quote_text(quote, lang)
    if not charged:
        return describe("cost_refunded", lang=lang)
    if job.fate_unknown:
        return describe("cost_uncertain", {"charged": charged}, lang)
    return describe("cost_kept", {"charged": charged}, lang)


def cost_short(job: JobRecord, lang: str = EN) -> str:
    """What a job costs, for a list: "45 credits", "0 credits (refunded)", or its quote while it runs."""
    charged = job.charged_credits or 0
    if job.state in SETTLED_STATES:
        return describe("cost_short_charged", {"charged": charged}, lang)
    if not job.state.terminal:
        quote = quote_of(job)
        return "" if quote is None else quote_text(quote, lang)  # the same sentence as everywhere
    if not charged:
        return describe("cost_short_refunded", lang=lang)
    return describe("cost_short_charged", {"charged": charged}, lang)


def binding_limit(balance: EffectiveLimits) -> LimitKind | None:
    """The server pool or bot budget, when it (not the member's allowance) limits what they can spend."""
    if balance.remaining >= max(0, balance.member_available):
        return None
    for kind, available in (
        (LimitKind.SERVER_POOL, balance.pool_available),
        (LimitKind.BOT_BUDGET, balance.budget_available),
    ):
        if available is not None and max(0, available) == balance.remaining:
            return kind
    return None


def limited_by(balance: EffectiveLimits, lang: str = EN) -> str | None:
    """Why a member has less than their allowance says, when the server pool or bot budget limits it."""
    kind = binding_limit(balance)
    if kind is None:
        return None
    return describe(f"left_limited_by_{kind.value}", {"available": balance.remaining}, lang)


def left_text(balance: EffectiveLimits, window: QuotaWindow, lang: str = EN) -> str:
    """What a member can really spend now, and when it resets: private words, never public."""
    data = {"left": balance.remaining, "window": window.value, "resets_at": balance.resets_at}
    text = describe("credits_left", data, lang)
    reason = limited_by(balance, lang)
    return f"{text} ({reason})" if reason else text


def grant_line(balance: EffectiveLimits, lang: str = EN) -> str | None:
    """The period's grants: extra credits, or credits a manager took back."""
    if balance.granted > 0:
        return describe("granted_extra", {"granted": balance.granted}, lang)
    if balance.granted < 0:
        return describe("taken_back", {"taken": -balance.granted}, lang)
    return None
