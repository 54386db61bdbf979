"""What a job cost, stated one way everywhere (what a member has left: `cogs.texts._balance`)."""

from __future__ import annotations

from bot.jobs.quote import Quote, quote_of
from bot.store import SETTLED_STATES, JobRecord
from cogs.texts._style import describe


def quote_text(quote: Quote) -> str:
    """A job's price before it ends, in the one sentence every surface uses: likely cost and hold."""
    code, data = quote.sentence()
    return describe(code, data)


def cost_text(job: JobRecord) -> str:
    """What a job costs, as a sentence: its quote while it runs, then what the ledger settled.

    Done: the charge. Failed or canceled: 0 with "refunded" when it cost nothing, else Magic Hour's
    charge, or (fate unknown at Magic Hour) what is counted as spent until the operator checks;
    once they have (`lipsync-bot reconcile`), the charge Magic Hour reported.
    """
    charged = job.charged_credits or 0
    if job.state in SETTLED_STATES:  # rendered: settled to Magic Hour's charge, being delivered or done
        return describe("cost_charged", {"charged": charged})
    if not job.state.terminal:
        quote = quote_of(job)
        if quote is None:
            return describe("cost_estimate_pending")
        return quote_text(quote)
    if not charged:
        return describe("cost_refunded")
    if job.fate_unknown:
        return describe("cost_uncertain", {"charged": charged})
    return describe("cost_kept", {"charged": charged})


def cost_short(job: JobRecord) -> str:
    """What a job costs, for a list: "45 credits", "0 credits (refunded)", or its quote while it runs."""
    charged = job.charged_credits or 0
    if job.state in SETTLED_STATES:
        return describe("cost_short_charged", {"charged": charged})
    if not job.state.terminal:
        quote = quote_of(job)
        return "" if quote is None else quote_text(quote)  # the same sentence as everywhere
    if not charged:
        return describe("cost_short_refunded")
    return describe("cost_short_charged", {"charged": charged})
