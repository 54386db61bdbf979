"""How a job ends: one decision, from what is known about it to what to do next. No I/O.

Every path that may end a job (a cancel, the deadline, an over-budget create, a failure, a
restart, a shutdown, a lost lease, a render that ended by itself, a delivery given up) asks
`decide` and carries out its answer; nothing else chooses a job's final state or its charge.
docs/design-notes.md, "How a job ends", has the rules as a table; tests/jobs/test_endings.py
checks every row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from bot.errors import Datum
from bot.magichour import VideoProject
from bot.store import UNKNOWN_AT_MAGIC_HOUR, JobState


class Stage(Enum):
    """How far the job got, as far as money is concerned."""

    UNSENT = "unsent"  # nothing that costs anything reached Magic Hour
    CREATING = "creating"  # the create may have reached Magic Hour; no project id is known
    SUBMITTED = "submitted"  # its project exists at Magic Hour (the id is known)
    RENDERED = "rendered"  # the render completed and was settled; it is being delivered

    @classmethod
    def of(cls, state: JobState, *, project_known: bool) -> Stage:
        """The stage of a job in `state`; `project_known`: its project id is known (recorded or in memory)."""
        if state in (JobState.DOWNLOADING, JobState.DELIVERING, JobState.DONE):
            return cls.RENDERED
        if project_known:
            return cls.SUBMITTED
        return cls.CREATING if state is JobState.CREATING else cls.UNSENT


class Why(Enum):
    """Why the job's ending is being decided now."""

    FINISHED = "finished"  # following the project: it may have ended by itself
    CANCEL = "cancel"  # its owner canceled it
    DEADLINE = "deadline"  # it ran past the job deadline
    OVER_BUDGET = "over_budget"  # the create charged more than the limits can hold
    FAILURE = "failure"  # its run failed (a refusal, a bug, the database); a rescue is one too
    UNCERTAIN = "uncertain"  # the create call got no usable answer: a project may exist
    INTERRUPTED = "interrupted"  # found unfinished after a restart, with nothing to carry on
    UNDELIVERABLE = "undeliverable"  # delivery, and then a link, were given up
    SHUTDOWN = "shutdown"  # this process is stopping
    TAKEOVER = "takeover"  # another process has taken the job over


class Action(Enum):
    """What to do next."""

    END = "end"  # move the job to `state` with `charge`
    DELIVER = "deliver"  # the render is complete: settle to `charge` (if not yet) and deliver it
    STOP = "stop"  # a read just said queued/rendering: send a DELETE, then read again
    FOLLOW = "follow"  # not known yet: read the project again later
    LEAVE = "leave"  # not this process's to end: leave the job as it is, for its next owner


_STOPPABLE = frozenset({"queued", "rendering"})
# A failure after submission doesn't stop the render: it is followed and delivered, as if the
# bot had never stumbled (the member still gets what Magic Hour is making, and pays what it charges).
_STOPS = frozenset({Why.CANCEL, Why.DEADLINE, Why.OVER_BUDGET})
# What an unknown ending says about why it is unknown, by what was being done.
_UNREAD_REASON = {
    Why.CANCEL: "canceled_unreadable",
    Why.OVER_BUDGET: "over_budget_unreadable",
    Why.FAILURE: "internal_error",
}
_STARTING_REASON = {Why.UNCERTAIN: "no_answer", Why.INTERRUPTED: "interrupted_while_creating"}
UNREAD_REASONS = frozenset({"unreadable", *_UNREAD_REASON.values()})
"""Why an unknown ending is unknown, when the project was made and then couldn't be read."""
STARTING_REASONS = frozenset(_STARTING_REASON.values())
"""Why an unknown ending is unknown, when the create's answer was lost: nobody can name the project."""


@dataclass(frozen=True)
class Seen:
    """What Magic Hour last said about the project: `status` None when it couldn't be read."""

    status: str | None
    charged: int | None = None
    error_code: str | None = None
    error_detail: str | None = None

    @classmethod
    def of(cls, project: VideoProject | None) -> Seen:
        """What a read said (None: the read failed)."""
        if project is None:
            return UNREAD
        error = project.error
        return cls(
            project.status.value,
            project.credits_charged,
            error.code if error is not None else None,
            error.message if error is not None else None,
        )

    @property
    def settled(self) -> bool:
        """True when Magic Hour says the project ended, and what it charged for it."""
        return self.status in ("complete", "error", "canceled") and self.charged is not None


UNREAD = Seen(None)


@dataclass(frozen=True)
class Facts:
    """Everything `decide` looks at. `held`: what the job set aside (reservation and top-ups);
    `created_charge`: what the create answer charged (0 if not known); `out_of_time`: the last
    moment to wait for Magic Hour has passed; `code`/`data`: a failure's refusal, if it was one;
    `deadline_minutes`: the job deadline, for its message."""

    stage: Stage
    why: Why
    seen: Seen = UNREAD
    held: int = 0
    created_charge: int = 0
    out_of_time: bool = False
    code: str | None = None
    data: Mapping[str, Datum] = field(default_factory=dict)
    deadline_minutes: float = 0.0


@dataclass(frozen=True)
class Ending:
    """What to do. For END: the final `state`, its `code` and `data`, and `charge` (None: refund
    a job that sent nothing, or keep a rendered job's settled charge). For DELIVER: `charge` is
    what to settle to."""

    action: Action
    state: JobState | None = None
    code: str | None = None
    data: Mapping[str, Datum] = field(default_factory=dict)
    charge: int | None = None

    @property
    def follows(self) -> bool:
        """True while the project must still be followed (the job is not ending yet)."""
        return self.action in (Action.STOP, Action.FOLLOW)


LEAVE = Ending(Action.LEAVE)
FOLLOW = Ending(Action.FOLLOW)
STOP = Ending(Action.STOP)


class ImpossibleEnding(ValueError):
    """`decide` was asked about a combination no path can produce (a bug in the caller)."""


def decide(facts: Facts) -> Ending:
    """The one decision about how a job ends (the table in docs/design-notes.md, "How a job ends")."""
    if facts.why in (Why.SHUTDOWN, Why.TAKEOVER):
        return LEAVE
    if facts.stage is Stage.UNSENT:
        return _unsent(facts)
    if facts.stage is Stage.CREATING:
        return _creating(facts)
    if facts.stage is Stage.RENDERED:
        if facts.why is Why.UNDELIVERABLE:
            return Ending(Action.END, JobState.FAILED, "delivery_failed")
        return Ending(Action.DELIVER)  # paid for: deliver it (again), never refund it
    return _submitted(facts)


def _unsent(facts: Facts) -> Ending:
    why = facts.why
    if why is Why.CANCEL:
        return Ending(Action.END, JobState.CANCELED)
    if why is Why.INTERRUPTED:
        return Ending(Action.END, JobState.FAILED, "interrupted")
    if why is Why.FAILURE:
        return Ending(Action.END, JobState.FAILED, facts.code or "internal_error", dict(facts.data))
    raise ImpossibleEnding(f"a job that sent nothing can't end for {why.value}")


def _unknown(facts: Facts, reason: str) -> Ending:
    """Its fate at Magic Hour can't be known: at least what Magic Hour is known to hold counts as spent."""
    counted = max(facts.held, facts.created_charge, facts.seen.charged or 0)
    return Ending(Action.END, JobState.FAILED, UNKNOWN_AT_MAGIC_HOUR, {"reserved": counted, "reason": reason}, counted)


def _creating(facts: Facts) -> Ending:
    why = facts.why
    if why in (Why.FINISHED, Why.UNDELIVERABLE):
        raise ImpossibleEnding(f"a job with no project can't end for {why.value}")
    # The create may have made a project, and without its id nobody can follow or stop it.
    return _unknown(facts, _STARTING_REASON.get(why, "no_answer"))


def _submitted(facts: Facts) -> Ending:
    why, seen = facts.why, facts.seen
    if why in (Why.UNCERTAIN, Why.INTERRUPTED, Why.UNDELIVERABLE):
        raise ImpossibleEnding(f"a submitted job can't end for {why.value}")
    if seen.settled:
        assert seen.charged is not None  # `settled` says so
        if seen.status == "complete":
            return Ending(Action.DELIVER, charge=seen.charged)
        if seen.status == "error":
            code = f"magic_hour_{seen.error_code or 'error'}"
            return Ending(Action.END, JobState.FAILED, code, {"detail": seen.error_detail}, seen.charged)
        return _canceled(facts, seen.charged)
    if facts.out_of_time:
        return _unknown(facts, _UNREAD_REASON.get(why, "unreadable"))
    if why in _STOPS and seen.status in _STOPPABLE:
        return STOP
    return FOLLOW


def _canceled(facts: Facts, charged: int) -> Ending:
    """The project was canceled at Magic Hour: by this job's stop, or by someone else."""
    why = facts.why
    if why is Why.CANCEL:
        return Ending(Action.END, JobState.CANCELED, charge=charged)
    if why is Why.DEADLINE:
        return Ending(Action.END, JobState.FAILED, "deadline", {"minutes": facts.deadline_minutes}, charged)
    if why is Why.OVER_BUDGET:
        data = {"charged": facts.created_charge, "reserved": facts.held}
        return Ending(Action.END, JobState.FAILED, "over_budget_at_create", data, charged)
    return Ending(Action.END, JobState.FAILED, "canceled_remotely", charge=charged)
