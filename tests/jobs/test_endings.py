"""The one decision about how a job ends (`bot.jobs.endings.decide`): every row of its table.

The table below is the design notes' table of endings, row by row. Then the rules hold over every
combination of stage, reason, read and time: a submitted job ends only on a read that says how
it ended (or when it is out of time, unknown and counted); a DELETE is asked for only after a read
that says queued or rendering; only a job that sent nothing is refunded; a shutdown never ends a job.
"""

from __future__ import annotations

import itertools

import pytest

from bot.jobs.endings import (
    UNREAD,
    Action,
    Ending,
    Facts,
    ImpossibleEnding,
    Seen,
    Stage,
    Why,
    decide,
)
from bot.store import UNKNOWN_AT_MAGIC_HOUR, JobState

F, C = JobState.FAILED, JobState.CANCELED
HELD, CREATED = 90, 60  # what the job set aside, and what the create answer charged

QUEUED = Seen("queued", 60)
RENDERING = Seen("rendering")
COMPLETE = Seen("complete", 45)
COMPLETE_NO_CHARGE = Seen("complete")
ERRORED = Seen("error", 0, "no_source_face", "No face was detected in the video.")
CANCELED = Seen("canceled", 3)
CANCELED_NO_CHARGE = Seen("canceled")


def facts(stage: Stage, why: Why, seen: Seen = UNREAD, *, late: bool = False, **kw: object) -> Facts:
    return Facts(stage, why, seen, held=HELD, created_charge=CREATED, out_of_time=late, deadline_minutes=60.0, **kw)  # type: ignore[arg-type]


def unknown(reason: str, counted: int = HELD) -> Ending:
    return Ending(Action.END, F, UNKNOWN_AT_MAGIC_HOUR, {"reserved": counted, "reason": reason}, counted)


TABLE: list[tuple[Facts, Ending]] = [
    # Nothing sent: ended at once, refunded.
    (facts(Stage.UNSENT, Why.CANCEL), Ending(Action.END, C)),
    (facts(Stage.UNSENT, Why.INTERRUPTED), Ending(Action.END, F, "interrupted")),
    (facts(Stage.UNSENT, Why.FAILURE), Ending(Action.END, F, "internal_error")),
    (
        facts(Stage.UNSENT, Why.FAILURE, code="clip_too_long", data={"length": 75.0}),
        Ending(Action.END, F, "clip_too_long", {"length": 75.0}),
    ),
    (facts(Stage.UNSENT, Why.SHUTDOWN), Ending(Action.LEAVE)),
    # The create may have made a project nobody can name: unknown, counted.
    (facts(Stage.CREATING, Why.UNCERTAIN), unknown("no_answer")),
    (facts(Stage.CREATING, Why.INTERRUPTED), unknown("interrupted_while_creating")),
    (facts(Stage.CREATING, Why.FAILURE), unknown("no_answer")),
    (facts(Stage.CREATING, Why.CANCEL), unknown("no_answer")),
    (facts(Stage.CREATING, Why.TAKEOVER), Ending(Action.LEAVE)),
    # Submitted, a read that says how it ended, with its charge.
    (facts(Stage.SUBMITTED, Why.FINISHED, COMPLETE), Ending(Action.DELIVER, charge=45)),
    (facts(Stage.SUBMITTED, Why.CANCEL, COMPLETE), Ending(Action.DELIVER, charge=45)),
    (facts(Stage.SUBMITTED, Why.DEADLINE, COMPLETE, late=True), Ending(Action.DELIVER, charge=45)),
    (
        facts(Stage.SUBMITTED, Why.FINISHED, ERRORED),
        Ending(Action.END, F, "magic_hour_no_source_face", {"detail": "No face was detected in the video."}, 0),
    ),
    (facts(Stage.SUBMITTED, Why.CANCEL, CANCELED), Ending(Action.END, C, charge=3)),
    (facts(Stage.SUBMITTED, Why.DEADLINE, CANCELED), Ending(Action.END, F, "deadline", {"minutes": 60.0}, 3)),
    (
        facts(Stage.SUBMITTED, Why.OVER_BUDGET, CANCELED),
        Ending(Action.END, F, "over_budget_at_create", {"charged": CREATED, "reserved": HELD}, 3),
    ),
    (facts(Stage.SUBMITTED, Why.FINISHED, CANCELED), Ending(Action.END, F, "canceled_remotely", charge=3)),
    (facts(Stage.SUBMITTED, Why.FAILURE, CANCELED), Ending(Action.END, F, "canceled_remotely", charge=3)),
    # Submitted, still going: a stop asks for a DELETE; following (or a failure) keeps following.
    (facts(Stage.SUBMITTED, Why.CANCEL, QUEUED), Ending(Action.STOP)),
    (facts(Stage.SUBMITTED, Why.DEADLINE, RENDERING), Ending(Action.STOP)),
    (facts(Stage.SUBMITTED, Why.OVER_BUDGET, RENDERING), Ending(Action.STOP)),
    (facts(Stage.SUBMITTED, Why.FAILURE, RENDERING), Ending(Action.FOLLOW)),
    (facts(Stage.SUBMITTED, Why.FINISHED, RENDERING), Ending(Action.FOLLOW)),
    # Submitted, nothing usable read (no answer, or a final status without its charge): follow.
    (facts(Stage.SUBMITTED, Why.CANCEL), Ending(Action.FOLLOW)),
    (facts(Stage.SUBMITTED, Why.FINISHED, COMPLETE_NO_CHARGE), Ending(Action.FOLLOW)),
    (facts(Stage.SUBMITTED, Why.CANCEL, CANCELED_NO_CHARGE), Ending(Action.FOLLOW)),
    # ... until the job is out of time: unknown, counted at least what Magic Hour is known to hold.
    (facts(Stage.SUBMITTED, Why.CANCEL, late=True), unknown("canceled_unreadable")),
    (facts(Stage.SUBMITTED, Why.OVER_BUDGET, late=True), unknown("over_budget_unreadable")),
    (facts(Stage.SUBMITTED, Why.DEADLINE, RENDERING, late=True), unknown("unreadable")),
    (facts(Stage.SUBMITTED, Why.FINISHED, COMPLETE_NO_CHARGE, late=True), unknown("unreadable")),
    (facts(Stage.SUBMITTED, Why.FAILURE, late=True), unknown("internal_error")),
    (facts(Stage.SUBMITTED, Why.SHUTDOWN, COMPLETE), Ending(Action.LEAVE)),
    # Rendered (settled when it completed): delivered, again if need be; only giving up ends it.
    (facts(Stage.RENDERED, Why.INTERRUPTED), Ending(Action.DELIVER)),
    (facts(Stage.RENDERED, Why.FAILURE), Ending(Action.DELIVER)),
    (facts(Stage.RENDERED, Why.CANCEL), Ending(Action.DELIVER)),
    (facts(Stage.RENDERED, Why.UNDELIVERABLE), Ending(Action.END, F, "delivery_failed")),
    (facts(Stage.RENDERED, Why.TAKEOVER), Ending(Action.LEAVE)),
]


@pytest.mark.parametrize(("given", "expected"), TABLE, ids=lambda v: repr(v)[:90] if isinstance(v, Facts) else "")
def test_each_row_of_the_table(given: Facts, expected: Ending) -> None:
    """The decision for each row is exactly the table's."""
    assert decide(given) == expected


def test_more_held_by_magic_hour_than_set_aside_counts_the_larger() -> None:
    """An unknown ending counts the most Magic Hour is known to hold: the create's charge, or a read's."""
    assert decide(Facts(Stage.SUBMITTED, Why.CANCEL, Seen("rendering", 120), held=90, out_of_time=True)).charge == 120
    assert decide(Facts(Stage.CREATING, Why.UNCERTAIN, held=90, created_charge=150)).charge == 150


IMPOSSIBLE = [
    (Stage.UNSENT, Why.FINISHED),
    (Stage.UNSENT, Why.DEADLINE),
    (Stage.UNSENT, Why.OVER_BUDGET),
    (Stage.UNSENT, Why.UNCERTAIN),
    (Stage.UNSENT, Why.UNDELIVERABLE),
    (Stage.CREATING, Why.FINISHED),
    (Stage.CREATING, Why.UNDELIVERABLE),
    (Stage.SUBMITTED, Why.UNCERTAIN),
    (Stage.SUBMITTED, Why.INTERRUPTED),
    (Stage.SUBMITTED, Why.UNDELIVERABLE),
]


@pytest.mark.parametrize(("stage", "why"), IMPOSSIBLE)
def test_what_no_path_can_ask_is_refused(stage: Stage, why: Why) -> None:
    """A combination no caller can produce is a bug to surface, not an ending to guess."""
    with pytest.raises(ImpossibleEnding):
        decide(Facts(stage, why))


SEEN = [UNREAD, QUEUED, RENDERING, COMPLETE, COMPLETE_NO_CHARGE, ERRORED, CANCELED, CANCELED_NO_CHARGE]


def every_decision() -> list[tuple[Facts, Ending]]:
    decisions = []
    for stage, why, seen, late in itertools.product(Stage, Why, SEEN, (False, True)):
        if (stage, why) in IMPOSSIBLE:
            continue
        given = facts(stage, why, seen, late=late)
        decisions.append((given, decide(given)))
    return decisions


def test_every_combination_is_decided_and_only_impossible_ones_are_refused() -> None:
    """The decision is total: every combination but the impossible ones gets an ending."""
    assert len(every_decision()) == (len(Stage) * len(Why) - len(IMPOSSIBLE)) * len(SEEN) * 2


def test_a_submitted_job_ends_only_on_a_read_with_its_charge_or_out_of_time() -> None:
    """Rule two: no ending on a stale, odd or missing read while there is time to ask again."""
    for given, ending in every_decision():
        if given.stage is Stage.SUBMITTED and ending.action in (Action.END, Action.DELIVER):
            assert given.seen.settled or given.out_of_time, given
            if given.seen.settled:
                assert ending.charge == given.seen.charged, given  # the ledger mirrors Magic Hour
            else:
                assert ending.code == UNKNOWN_AT_MAGIC_HOUR and ending.charge is not None, given
                assert ending.charge >= max(given.held, given.created_charge), given


def test_a_delete_is_asked_for_only_after_a_read_that_says_it_is_still_going() -> None:
    """Never a DELETE on a project read complete, errored, canceled, or not read at all."""
    for given, ending in every_decision():
        if ending.action is Action.STOP:
            assert given.seen.status in ("queued", "rendering") and not given.out_of_time, given


def test_only_a_job_that_sent_nothing_is_refunded() -> None:
    """A charge of None ends a job free: only before anything reached Magic Hour (or, rendered, to keep its charge)."""
    for given, ending in every_decision():
        if ending.action is Action.END and ending.charge is None:
            assert given.stage in (Stage.UNSENT, Stage.RENDERED), given
        if ending.action is Action.END and given.stage is Stage.UNSENT:
            assert ending.charge is None, given


def test_a_complete_render_with_its_charge_is_always_delivered() -> None:
    """Whatever was going on (a cancel, the deadline, a failure), a finished, charged render is delivered."""
    for given, ending in every_decision():
        if given.stage is Stage.SUBMITTED and given.seen == COMPLETE and given.why not in (Why.SHUTDOWN, Why.TAKEOVER):
            assert ending == Ending(Action.DELIVER, charge=45), given


def test_a_shutdown_or_a_lost_lease_never_ends_a_job() -> None:
    """The next owner carries the job on."""
    for given, ending in every_decision():
        if given.why in (Why.SHUTDOWN, Why.TAKEOVER):
            assert ending.action is Action.LEAVE


def test_a_stage_is_read_from_the_state_and_whether_the_project_is_known() -> None:
    """How far a job got, as far as money goes."""
    assert Stage.of(JobState.UPLOADING, project_known=False) is Stage.UNSENT
    assert Stage.of(JobState.CREATING, project_known=False) is Stage.CREATING
    assert Stage.of(JobState.CREATING, project_known=True) is Stage.SUBMITTED
    assert Stage.of(JobState.RENDERING, project_known=True) is Stage.SUBMITTED
    assert Stage.of(JobState.DELIVERING, project_known=True) is Stage.RENDERED
