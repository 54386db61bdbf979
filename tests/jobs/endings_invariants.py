"""The money and results invariants of the model of endings, held against what the sandbox saw.

Magic Hour's side comes from the sandbox: each project's charge and status (a project belongs to
the job its name numbers, `#<job> · …`, so even a project whose id the bot never learnt is found),
every DELETE with what it found and what its client had last read. The bot's side comes from the
store (jobs and ledger rows) and from the `Recorder` (what members got).

- (a) The ledger equals what Magic Hour charged, job by job, for every job that has ended whose
  projects have all ended at Magic Hour. A job that ended `unknown_at_magic_hour` counts as spent
  until the operator reconciles it: it gives back nothing it set aside, and counts *at least* what
  Magic Hour charged once its projects have ended. (A hold Magic Hour takes while it renders isn't
  spend: a create that holds more than it documents charges what was rendered.)
- (b) Every project Magic Hour completed (and charged) whose job has ended reached its member:
  delivered exactly once as a file, or offered as a link. Twice only across a restart between
  the delivery and its record (the documented window: a duplicate, never a loss). Exempt: a
  project whose id the bot never learnt (its create's answer was lost and the job ended unknown,
  counted by (a)); the bot cannot follow what it cannot name.
- (c) No DELETE reaches a project whose last read said `complete`. And none reaches a render that
  had finished: the clock only moves while the bot waits, so a DELETE sent right after the read
  that showed the render going can't find it finished; one that does was sent after a pause
  without reading again (a retry after a 5xx), and destroyed a paid result.
- (d) Real spend stays within every limit. A reservation or top-up is granted only when every
  limit has room for it (`EffectiveLimits.refusal_for`: amount <= limit - (settled charges + open
  holds) for the member's allowance, the server's pool and the bot's budget), and a settle
  records Magic Hour's charge even above what was held. So real spend stays within the limits
  exactly when no job is charged more than it held; both are checked: per job, Magic Hour's final
  charge <= its reservation plus top-ups ("d-hold"), and per limit, the final charges of its
  jobs <= the limit ("d-limit").
- (e) At the end, after `World.settle`: every job has ended, and so has every render.
- The store's own `check_invariants()` is empty.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass

from bot.sandbox import Project, Status
from bot.store import JobRecord, LedgerEntry, LedgerKind
from tests.jobs.endings_harness import GUILD, MEMBERS, World

DEFAULT_ALLOWANCE = 10_000  # `make_settings`' default member credits
_NAMED = re.compile(r"#(\d+) ·")


@dataclass(frozen=True)
class Violation:
    """One broken invariant: which (`a`, `a-unknown`, `b`, `c`, `c-destroyed`, `d-hold`, `d-limit`,
    `e`, `store`) and what was seen."""

    rule: str
    text: str

    def __str__(self) -> str:
        return f"({self.rule}) {self.text}"


def projects_by_job(world: World) -> dict[int, list[Project]]:
    """The sandbox's projects, by the job number in their names."""
    found: dict[int, list[Project]] = collections.defaultdict(list)
    for project in world.sandbox.projects.values():
        named = _NAMED.match(project.name)
        if named is not None:
            found[int(named.group(1))].append(project)
    return found


def _describe(job: JobRecord, projects: list[Project], entries: list[LedgerEntry], world: World) -> str:
    there = ", ".join(
        f"{p.id[:8]}: {p.status.value} charged {p.credits_charged}"
        f" (files {world.recorder.files[p.id]}, links {world.recorder.links[p.id]})"
        for p in projects
    )
    rows = ", ".join(f"{e.kind.value} {e.amount}" for e in entries)
    return (
        f"job {job.id} ({job.mode.value}, member {job.user_id}) {job.state.value}"
        f" {job.error_code or ''} {job.error_data or ''} project {(job.project_id or '-')[:8]};"
        f" at Magic Hour [{there}]; ledger [{rows}]"
    )


async def check(world: World, *, final: bool) -> list[Violation]:
    """Every invariant broken now (see the module docstring); `final` adds (e)."""
    store, sandbox = world.services.store, world.sandbox
    found: list[Violation] = []
    spent: collections.Counter[int] = collections.Counter()  # member -> Magic Hour's final charges
    by_job = projects_by_job(world)
    for job in await store.jobs.for_guild(GUILD, limit=10_000):
        projects = by_job.get(job.id, [])
        entries = await store.quota.entries(job.id)
        ended_there = all(p.is_finalised() for p in projects)
        charged = sum(p.credits_charged for p in projects)
        counted = -sum(e.amount for e in entries)
        held = -sum(e.amount for e in entries if e.kind in (LedgerKind.RESERVE, LedgerKind.TOPUP))
        said = _describe(job, projects, entries, world)
        if ended_there:
            spent[job.user_id] += charged
            if charged > held:
                found.append(Violation("d-hold", f"charged {charged} but held {held}: {said}"))
        if not job.state.terminal:
            if final:
                found.append(Violation("e", f"never ended: {said}"))
            continue
        if job.fate_unknown and counted < held:
            # Counted as spent until the operator reconciles it: nothing it set aside is given back.
            found.append(Violation("a-unknown", f"counts {counted}, less than it held ({held}): {said}"))
        if not ended_there:
            continue  # Magic Hour is still rendering it: its charge isn't known yet
        if job.fate_unknown:
            if counted < charged:
                found.append(Violation("a-unknown", f"counts {counted}, less than charged {charged}: {said}"))
        elif counted != charged:
            found.append(Violation("a", f"ledger {counted} != charged {charged}: {said}"))
        found.extend(_deliveries(world, job, projects, said))
    found.extend(_deletes(world))
    found.extend(_over_limits(world, spent))
    if final:
        running = [p.id[:8] for p in sandbox.projects.values() if not p.is_finalised()]
        if running:
            found.append(Violation("e", f"projects still rendering at the end: {running}"))
    found.extend(Violation("store", problem) for problem in await store.check_invariants())
    return found


def _deliveries(world: World, job: JobRecord, projects: list[Project], said: str) -> list[Violation]:
    """(b): each completed render of an ended job reached its member once (a file, else a link)."""
    found = []
    for project in projects:
        if project.status is not Status.COMPLETE or (job.fate_unknown and job.project_id is None):
            continue
        files, links = world.recorder.files[project.id], world.recorder.links[project.id]
        if not (files == 1 or (files == 0 and links > 0) or (files > 1 and project.id in world.may_repeat)):
            found.append(Violation("b", f"a completed render reached its member {files} times: {said}"))
    return found


def _deletes(world: World) -> list[Violation]:
    """(c): no DELETE went to a project a read had said complete, nor destroyed a finished render."""
    found = []
    for note in world.sandbox.deletes:
        read = note.last_read
        if read is not None and read.status == Status.COMPLETE:
            found.append(Violation("c", f"DELETE of {note.project_id[:8]} after a read said complete"))
        elif note.found == Status.COMPLETE:
            last = f"{read.status} at t={read.at:g}" if read is not None else "never read"
            found.append(
                Violation("c-destroyed", f"DELETE at t={note.at:g} destroyed finished {note.project_id[:8]} ({last})")
            )
    return found


def _over_limits(world: World, spent: collections.Counter[int]) -> list[Violation]:
    limits = world.limits
    found = []
    allowance = limits.member if limits.member is not None else DEFAULT_ALLOWANCE
    for member in MEMBERS:
        if spent[member] > allowance:
            found.append(Violation("d-limit", f"member {member} spent {spent[member]} of {allowance}"))
    total = sum(spent.values())
    if limits.pool is not None and total > limits.pool:
        found.append(Violation("d-limit", f"the server spent {total} of its pool of {limits.pool}"))
    if limits.budget is not None and total > limits.budget:
        found.append(Violation("d-limit", f"the bot spent {total} of its budget of {limits.budget}"))
    return found


async def reached(world: World) -> set[str]:
    """The endings and paths an example took (for the run's statistics): each final state and error
    code, and whether a DELETE was sent, a render was delivered or offered as a link, a job ended
    unknown, or the bot restarted."""
    seen = set()
    for job in await world.services.store.jobs.for_guild(GUILD, limit=10_000):
        seen.add(f"ended {job.state.value} {job.error_code or ''}".strip())
    if world.sandbox.deletes:
        seen.add("a DELETE reached a project")
    if world.recorder.files:
        seen.add("a render was delivered")
    if world.recorder.links:
        seen.add("a render was offered as a link")
    if world.restarts > 1:  # `settle` restarts once in every example
        seen.add("the bot restarted mid-example")
    return seen
