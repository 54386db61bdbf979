"""Switches that make the sandbox misbehave on purpose: error statuses, dropped connections,
requests held open, bodies that are not what they should be, storms, random faults, and jobs
that end in error.

`Faults` holds one sandbox's switches; the order in which they apply to a request is on it.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal, cast, get_args

from bot.clock import Clock
from bot.sandbox.messages import JOB_ERROR_MESSAGES, STATUS_MESSAGES

Route = Literal["upload_urls", "create", "get_project", "delete_project", "account", "storage_put", "download"]
ROUTES: tuple[str, ...] = get_args(Route)
# Routes whose answer is a JSON body (a `malformed` fault cuts it short).
JSON_ROUTES = frozenset({"upload_urls", "create", "get_project", "account"})
# Routes whose response streams, so nothing can be answered after their effect but a cut.
STREAMING_ROUTES = frozenset({"storage_put", "download"})
# Fault kinds by name, for `randomly` and the CLI (an HTTP error status is a kind too).
KIND_NAMES = ("malformed", "unknown_status", "disconnect", "lost")
UNKNOWN_STATUS = "optimizing"
STORM_STATUSES = (500, 502, 503)


class FaultKind(Enum):
    """What a request fault does."""

    FAIL = "fail"
    DISCONNECT = "disconnect"
    HANG = "hang"
    MALFORMED = "malformed"
    UNKNOWN_STATUS = "unknown_status"
    NO_CHARGE = "no_charge"
    ODD_JSON = "odd_json"


@dataclass(frozen=True)
class RequestFault:
    """One injected misbehaviour for one request.

    `after_effect`: the request is handled first (for "create" the project exists and is billed)
    and only the answer is spoiled. `value` is the status an UNKNOWN_STATUS fault reports.
    `retry_after` is a FAIL answer's `Retry-After` header (seconds or an HTTP date), if any.
    """

    kind: FaultKind
    status: int = 500
    message: str = ""
    after_effect: bool = False
    value: str = ""
    retry_after: str | None = None

    @property
    def label(self) -> str:
        """How `counters.faults_injected` names this fault: "503", "lost", "malformed", ..."""
        if self.kind is FaultKind.FAIL:
            return f"{self.status}-after-effect" if self.after_effect else str(self.status)
        if self.kind is FaultKind.DISCONNECT:
            return "lost" if self.after_effect else "disconnect"
        return str(self.kind.value)


@dataclass(frozen=True)
class JobErrorFault:
    """Make one job end in `error` with this code and message."""

    code: str
    message: str


@dataclass(frozen=True)
class FaultSpec:
    """One `--fault ROUTE:KIND[:RATE]` of the CLI."""

    route: Route
    kind: int | str
    rate: float = 1.0


@dataclass
class _Storm:
    until: float
    faults: Iterator[RequestFault]


@dataclass
class _RandomRule:
    rate: float
    faults: tuple[RequestFault, ...]
    weights: tuple[float, ...]
    rng: random.Random

    def draw(self) -> RequestFault | None:
        if self.rng.random() >= self.rate:
            return None
        return self.rng.choices(self.faults, weights=self.weights)[0]


def _check_route(route: str) -> None:
    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r}; expected one of {', '.join(ROUTES)}")


def _check_times(times: int) -> None:
    if times < 1:
        raise ValueError("times must be at least 1")


def _check_status(status: int) -> None:
    if not 400 <= status <= 599:
        raise ValueError("status must be an HTTP error status (400-599)")


def _fail(status: int, message: str | None = None, after_effect: bool = False) -> RequestFault:
    _check_status(status)
    text = message if message is not None else STATUS_MESSAGES.get(status, "Error")
    return RequestFault(FaultKind.FAIL, status=status, message=text, after_effect=after_effect)


def _check_malformed(route: str) -> None:
    if route not in JSON_ROUTES:
        raise ValueError(f"a malformed body needs a route that answers JSON: {', '.join(sorted(JSON_ROUTES))}")


def _kind_fault(route: str, kind: int | str) -> RequestFault:
    """The fault a kind names: an HTTP error status, or one of `KIND_NAMES`."""
    if isinstance(kind, bool):
        raise ValueError(f"unknown fault kind {kind!r}")
    if isinstance(kind, int) or kind.isdigit():
        return _fail(int(kind))
    if kind == "malformed":
        _check_malformed(route)
        return RequestFault(FaultKind.MALFORMED, after_effect=True)
    if kind == "unknown_status":
        if route != "get_project":
            raise ValueError("unknown_status is a fault of get_project only")
        return RequestFault(FaultKind.UNKNOWN_STATUS, after_effect=True, value=UNKNOWN_STATUS)
    if kind == "disconnect":
        return RequestFault(FaultKind.DISCONNECT)
    if kind == "lost":
        return RequestFault(FaultKind.DISCONNECT, after_effect=True)
    raise ValueError(f"unknown fault kind {kind!r}; expected an HTTP error status or one of {', '.join(KIND_NAMES)}")


def parse_fault_spec(text: str) -> FaultSpec:
    """`ROUTE:KIND[:RATE]` (the CLI's `--fault`), e.g. "get_project:500:0.2" or "create:lost"."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"{text!r}: expected ROUTE:KIND[:RATE], e.g. get_project:500:0.2")
    route, kind = parts[0], parts[1]
    _check_route(route)
    _kind_fault(route, kind)
    rate = 1.0
    if len(parts) == 3:
        try:
            rate = float(parts[2])
        except ValueError:
            raise ValueError(f"{text!r}: RATE must be a number from 0 to 1") from None
        if not 0 <= rate <= 1:
            raise ValueError(f"{text!r}: RATE must be a number from 0 to 1")
    return FaultSpec(route=cast(Route, route), kind=int(kind) if kind.isdigit() else kind, rate=rate)


class Faults:
    """The fault switches of one sandbox (`sb.faults`). `clock` is needed by `storm(seconds=...)` only.

    For each request to a route, the first of these that applies decides its fault:

    1. a fault queued by `fail`, `disconnect`, `hang`, `malformed`, `unknown_status`, `no_charge`,
       `odd_json` or `storm(times=...)`, consumed in the order injected, one per request;
    2. a storm over a stretch of the sandbox clock (`storm(seconds=...)`);
    3. a random rule (`randomly`), drawn from its own seeded RNG, so the same sequence of requests
       to a route meets the same faults on every run.

    Job-error faults are consumed by the next jobs created, in order. From the command line:
    `lipsync-bot sandbox --fault get_project:500:0.2 --fault create:429:0.3 --seed 1`
    (`parse_fault_spec`, `apply`; rates on one route add up).
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock
        self._queues: dict[str, collections.deque[RequestFault]] = collections.defaultdict(collections.deque)
        self._storms: dict[str, _Storm] = {}
        self._random: dict[str, _RandomRule] = {}
        self._job_errors: collections.deque[JobErrorFault] = collections.deque()
        self._released = asyncio.Event()

    def _queue(self, route: str, faults: Iterable[RequestFault]) -> None:
        self._queues[route].extend(faults)

    def fail(
        self,
        route: Route,
        status: int = 429,
        times: int = 1,
        message: str | None = None,
        after_effect: bool = False,
        retry_after: str | None = None,
    ) -> None:
        """Answer the next `times` requests to `route` with `status` and `{"message": ...}`.

        Nothing changes server-side unless `after_effect`: then the request is handled first (a
        "create" makes and bills its project) and its answer is replaced by the error, as when a
        gateway gives up on a request the API went on to finish. Not for "download", which streams.
        `retry_after` is sent as the answer's `Retry-After` header, as given.
        """
        _check_route(route)
        _check_times(times)
        if after_effect and route == "download":
            raise ValueError("download streams its answer: use disconnect(after_effect=True) to cut it")
        fault = dataclasses.replace(_fail(status, message, after_effect), retry_after=retry_after)
        self._queue(route, itertools.repeat(fault, times))

    def disconnect(self, route: Route, times: int = 1, after_effect: bool = False) -> None:
        """Close the connection of the next `times` requests to `route` without a response.

        With `after_effect=False` nothing happens server-side (the request is dropped unread);
        with `after_effect=True` the request is handled first (for "create" the job exists and
        is billed) and only the response is lost.
        """
        _check_route(route)
        _check_times(times)
        self._queue(route, itertools.repeat(RequestFault(FaultKind.DISCONNECT, after_effect=after_effect), times))

    def hang(self, route: Route, times: int = 1) -> None:
        """Hold the next `times` requests to `route` open until `release()` or the client goes away.

        The request is handled first (for "create" the job exists and is billed); only its
        response is held back, then sent on `release()`.
        """
        _check_route(route)
        _check_times(times)
        self._queue(route, itertools.repeat(RequestFault(FaultKind.HANG, after_effect=True), times))

    def malformed(self, route: Route = "get_project", times: int = 1) -> None:
        """Answer the next `times` requests to `route` with their real status but half their JSON body.

        The request is handled first (a "create" makes and bills its project); the body is cut
        short with a matching Content-Length, so the client reads a complete but unparsable body.
        """
        _check_route(route)
        _check_times(times)
        _check_malformed(route)
        self._queue(route, itertools.repeat(RequestFault(FaultKind.MALFORMED, after_effect=True), times))

    def unknown_status(self, value: str = UNKNOWN_STATUS, times: int = 1) -> None:
        """Report `status: value` (not a documented status) in the next `times` project reads.

        The rest of the 200 body is the project as it is (a due job is finalised as usual); the
        read after it shows the real status again.
        """
        _check_times(times)
        fault = RequestFault(FaultKind.UNKNOWN_STATUS, after_effect=True, value=value)
        self._queue("get_project", itertools.repeat(fault, times))

    def no_charge(self, times: int = 1) -> None:
        """Leave `credits_charged` out of the next `times` project reads (a 200, the body otherwise valid).

        The read is handled as usual (a due job is finalised); only the money field is missing, as
        from an API that changed its shape or a proxy that trimmed it.
        """
        _check_times(times)
        self._queue("get_project", itertools.repeat(RequestFault(FaultKind.NO_CHARGE, after_effect=True), times))

    def odd_json(self, route: Route = "get_project", times: int = 1) -> None:
        """Answer the next `times` requests to `route` with their real status and a valid JSON body
        of another shape: the real body wrapped as `{"data": ...}`. The request is handled first."""
        _check_route(route)
        _check_times(times)
        _check_malformed(route)
        self._queue(route, itertools.repeat(RequestFault(FaultKind.ODD_JSON, after_effect=True), times))

    def storm(
        self,
        route: Route = "get_project",
        *,
        times: int | None = None,
        seconds: float | None = None,
        statuses: Sequence[int] = STORM_STATUSES,
    ) -> None:
        """Answer requests to `route` with server errors, cycling through `statuses` (500, 502, 503).

        Give `times` for the next that many requests (queued like `fail`), or `seconds` for every
        request until the sandbox clock has moved that far (a `FakeClock` decides when it ends).
        Nothing changes server-side: a "create" in a storm makes no project.
        """
        _check_route(route)
        if (times is None) == (seconds is None):
            raise ValueError("give exactly one of times or seconds")
        if not statuses:
            raise ValueError("statuses must name at least one status")
        faults = [_fail(status) for status in statuses]
        if times is not None:
            _check_times(times)
            self._queue(route, itertools.islice(itertools.cycle(faults), times))
            return
        assert seconds is not None
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        if self._clock is None:
            raise ValueError("a storm over time needs the sandbox's clock (use sb.faults)")
        self._storms[route] = _Storm(until=self._clock.monotonic() + seconds, faults=itertools.cycle(faults))

    def randomly(
        self,
        route: Route,
        rate: float,
        kinds: Sequence[int | str] | Mapping[int | str, float],
        *,
        seed: int = 0,
    ) -> None:
        """Give each request to `route` a fault with probability `rate`, replacing any earlier rule.

        `kinds` are HTTP error statuses (answered at once, nothing done: a 429 on "create" makes
        no project) or names: "malformed" (handled, body cut short), "unknown_status"
        (get_project: handled, status "optimizing"), "disconnect" (dropped unread), "lost"
        (handled, then dropped: for "create" a billed project whose id never arrives). A list
        picks among them evenly; a mapping gives each a weight. The RNG is seeded with
        `seed` and the route, so runs repeat exactly. `rate=0` removes the rule.

            sb.faults.randomly("get_project", rate=0.2, kinds=[409, 500, 503, "malformed", "unknown_status"], seed=1)
            sb.faults.randomly("create", rate=0.3, kinds=[429])
        """
        _check_route(route)
        if not 0 <= rate <= 1:
            raise ValueError("rate must be from 0 to 1")
        weighted = list(kinds.items()) if isinstance(kinds, Mapping) else [(kind, 1.0) for kind in kinds]
        if not weighted:
            raise ValueError("kinds must name at least one fault")
        if any(weight <= 0 for _, weight in weighted):
            raise ValueError("weights must be positive")
        faults = tuple(_kind_fault(route, kind) for kind, _ in weighted)
        if rate == 0:
            self._random.pop(route, None)
            return
        # A str seed is hashed with SHA-512, so it is stable across runs; not for cryptography.
        rng = random.Random(f"{route}:{seed}")  # noqa: S311
        self._random[route] = _RandomRule(rate, faults, tuple(weight for _, weight in weighted), rng)

    def apply(self, specs: Iterable[FaultSpec], *, seed: int = 0) -> None:
        """Set random rules from CLI specs: per route, the rates add up and weigh the kinds."""
        by_route: dict[str, dict[int | str, float]] = collections.defaultdict(dict)
        for spec in specs:
            kinds = by_route[spec.route]
            kinds[spec.kind] = kinds.get(spec.kind, 0.0) + spec.rate
        for route, kinds in by_route.items():
            total = sum(kinds.values())
            if total > 1 + 1e-9:
                raise ValueError(f"the rates for {route} add up to {total:g}, more than 1")
            positive = {kind: rate for kind, rate in kinds.items() if rate > 0}
            if positive:
                self.randomly(cast(Route, route), min(total, 1.0), positive, seed=seed)

    def release(self) -> None:
        """Let every request held now answer; requests that hang later wait for the next release."""
        self._released.set()
        self._released = asyncio.Event()

    def job_error(self, code: str = "no_source_face", message: str | None = None, times: int = 1) -> None:
        """Make the next `times` jobs created end in status `error` with this code."""
        _check_times(times)
        text = message if message is not None else JOB_ERROR_MESSAGES.get(code, "The video could not be rendered.")
        self._job_errors.extend(JobErrorFault(code, text) for _ in range(times))

    def clear(self) -> None:
        """Drop every pending fault, storm and random rule, and release held requests."""
        self._queues.clear()
        self._storms.clear()
        self._random.clear()
        self._job_errors.clear()
        self.release()

    def pending(self, route: Route) -> int:
        """How many queued request faults are still waiting for `route` (storms over time and random rules aside)."""
        return len(self._queues.get(route, ()))

    def describe(self) -> list[str]:
        """One line per active storm and random rule, for the CLI's banner."""
        lines = [f"{route}: storm until t={storm.until:g}" for route, storm in self._storms.items()]
        for route, rule in self._random.items():
            total = sum(rule.weights)
            kinds = ", ".join(
                f"{fault.label} {rule.rate * weight / total:.0%}"
                for fault, weight in zip(rule.faults, rule.weights, strict=True)
            )
            lines.append(f"{route}: {kinds}")
        return lines

    def take(self, route: str) -> RequestFault | None:
        """The fault for this request to `route`, if any applies (consumes a queued one, draws a random one)."""
        queue = self._queues.get(route)
        if queue:
            return queue.popleft()
        storm = self._storms.get(route)
        if storm is not None:
            if self._clock is not None and self._clock.monotonic() < storm.until:
                return next(storm.faults)
            del self._storms[route]
        rule = self._random.get(route)
        return rule.draw() if rule is not None else None

    def take_job_error(self) -> JobErrorFault | None:
        """The job-error fault for a job being created, if one is queued (consumes it)."""
        return self._job_errors.popleft() if self._job_errors else None

    async def wait_released(self) -> None:
        """Wait until the next `release()`."""
        await self._released.wait()
