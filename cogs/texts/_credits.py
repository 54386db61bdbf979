"""What a job cost, stated one way everywhere (what a member has left: `cogs.texts._balance`)."""

from __future__ import annotations

from bot.store import SETTLED_STATES, JobRecord
from cogs.texts._style import EN, describe


def cost_text(job: JobRecord, lang: str = EN) -> str:
    """What a job costs, as a sentence: an estimate while it runs, then what the ledger settled.

    Done: the charge. Failed or canceled: 0 with "refunded" when it cost nothing, else Magic Hour's
    charge, or (fate unknown at Magic Hour) what is counted as spent until the operator checks;
    once they have (`lipsync-bot reconcile`), the charge Magic Hour reported.
    """
    charged = job.charged_credits or 0
    if job.state in SETTLED_STATES:  # rendered: settled to Magic Hour's charge, being delivered or done
        return describe("cost_charged", {"charged": charged}, lang)
    if not job.state.terminal:
        if job.estimated_credits is None:
            return describe("cost_estimate_pending", lang=lang)
        return describe("cost_estimate", {"estimate": job.estimated_credits}, lang)
    if not charged:
        return describe("cost_refunded", lang=lang)
    if job.fate_unknown:
        return describe("cost_uncertain", {"charged": charged}, lang)
    return describe("cost_kept", {"charged": charged}, lang)


def cost_short(job: JobRecord, lang: str = EN) -> str:
    """What a job costs, for a list: "45 credits", "0 credits (refunded)", "about 45 credits"."""
    charged = job.charged_credits or 0
    if job.state in SETTLED_STATES:
        return describe("cost_short_charged", {"charged": charged}, lang)
    if not job.state.terminal:
        if job.estimated_credits is None:
            return ""
        return describe("cost_short_estimate", {"estimate": job.estimated_credits}, lang)
    if not charged:
        return describe("cost_short_refunded", lang=lang)
    return describe("cost_short_charged", {"charged": charged}, lang)
