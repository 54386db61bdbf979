"""Errors the store raises.

These are programming or operational errors (a wrong call, a busy or newer database) or a
manager's request the operator's settings forbid (`AboveCeiling`), not things a member caused, so
they do not derive from `LipsyncError`. Each carries its numbers as attributes; the front ends
word them. A quota refusal is not an error at all: `QuotaLedger.reserve` returns a `Refusal`.
"""

from __future__ import annotations

from collections.abc import Sequence


class StoreError(Exception):
    """Base for the store's errors."""


class JobNotFound(StoreError, LookupError):
    """No job has this id (or it was deleted with its member's data)."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} does not exist")
        self.job_id = job_id


class InvalidTransition(StoreError):
    """A job was asked to move to a state it cannot reach from its current one."""

    def __init__(self, job_id: int, current: str, requested: str) -> None:
        super().__init__(f"job {job_id} cannot go from {current} to {requested}")
        self.job_id = job_id
        self.current = current
        self.requested = requested


class JobNotActive(StoreError):
    """The job has ended (done, failed, canceled), so it cannot reserve credits."""

    def __init__(self, job_id: int, state: str) -> None:
        super().__init__(f"job {job_id} is {state}; a finished job cannot reserve credits")
        self.job_id = job_id
        self.state = state


class NoReservation(StoreError):
    """A charge or a top-up for a job that holds no open reservation."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} has no open reservation")
        self.job_id = job_id


class NotReconcilable(StoreError):
    """Only a job that failed with its outcome at Magic Hour unknown can be reconciled with Magic Hour's charge."""

    def __init__(self, job_id: int, state: str, error_code: str | None) -> None:
        super().__init__(f"job {job_id} is {state} ({error_code or 'no error'}), not unknown at Magic Hour")
        self.job_id = job_id
        self.state = state
        self.error_code = error_code


class AlreadyReconciled(StoreError):
    """A job is reconciled with Magic Hour's charge once; `charged` is what was recorded then."""

    def __init__(self, job_id: int, charged: int) -> None:
        super().__init__(f"job {job_id} was already reconciled at {charged} credits")
        self.job_id = job_id
        self.charged = charged


class AboveCeiling(StoreError):
    """A limit, pool or grant above the operator's per-server ceiling (`server_credits_ceiling`).

    `requested` is the value the limit or pool would have, or for a grant the allowance plus
    grants the member would reach.
    """

    def __init__(self, ceiling: int, requested: int) -> None:
        super().__init__(f"{requested} credits is above the operator's ceiling of {ceiling}")
        self.ceiling = ceiling
        self.requested = requested


class MemberHasActiveJobs(StoreError):
    """A member's data cannot be deleted while some of their jobs are still running."""

    def __init__(self, user_id: int, job_ids: Sequence[int]) -> None:
        super().__init__(f"member {user_id} still has unfinished jobs: {', '.join(map(str, job_ids))}")
        self.user_id = user_id
        self.job_ids = tuple(job_ids)


class LeaseLost(StoreError):
    """Another process has claimed this job, or this process's claim is void (it was taken for dead,
    its heartbeat having stood still): this process must let the job go."""

    def __init__(self, job_id: int, holder: str) -> None:
        super().__init__(f"job {job_id} is now claimed by {holder}")
        self.job_id = job_id
        self.holder = holder


class StoreUnavailable(StoreError):
    """The database could not be reached (or stayed locked) for as long as the caller was willing to wait.

    Nothing the call meant to write was written, unless it is a `CommitUncertain`. Front ends tell
    a member to try again in a minute; a job's run treats it like any other failed step.
    """


class CommitUncertain(StoreUnavailable):
    """The connection was lost while PostgreSQL committed a write, and whether it did can't be learnt.

    Rare: the store asks the server afterwards (by the transaction's id) and retries a write that
    provably did not commit; only when that question can't be answered either is this raised.
    """


class StoreBusy(StoreUnavailable):
    """Another process held the database's write lock for longer than the busy timeout."""


class SchemaTooNew(StoreError):
    """The database was migrated by a newer version of the bot than this one."""
