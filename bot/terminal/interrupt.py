"""Ctrl+C while a terminal job runs: a question, not a stack trace.

While a job runs, `CtrlC` turns SIGINT into an event the command waits on beside the job, so it
can ask what to do (cancel the job, leave it running for `resume`, or keep waiting) instead of
dying with the job half-way. `StdinAnswers` reads the answer from standard input in a daemon
thread, so a second Ctrl+C (or the end of input) still ends the question at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Protocol, TextIO


class Interrupts(Protocol):
    """Something that says when the operator pressed Ctrl+C."""

    pressed: asyncio.Event


class Answers(Protocol):
    """Where the answer to a question comes from."""

    async def ask(self, prompt: str) -> str | None:
        """One line of answer, or None for none (end of input, or Ctrl+C again)."""
        ...


class CtrlC:
    """Within `with CtrlC():`, SIGINT sets `pressed` instead of raising `KeyboardInterrupt`.

    The previous handler comes back on exit (`asyncio.run`'s own, which cancels the program).
    Outside the main thread signals can't be caught, and Ctrl+C keeps its usual meaning.
    """

    def __init__(self) -> None:
        self.pressed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: object = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.pressed.set)

    def __enter__(self) -> CtrlC:
        self._loop = asyncio.get_running_loop()
        with contextlib.suppress(ValueError):  # not the main thread: leave Ctrl+C alone
            self._previous = signal.signal(signal.SIGINT, self._on_signal)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]
        self._loop = None


class StdinAnswers:
    """Answers typed at the terminal (or piped in), one line per question."""

    def __init__(self, interrupts: Interrupts, stream: TextIO | None = None) -> None:
        self._interrupts = interrupts
        self._stream = stream

    async def ask(self, prompt: str) -> str | None:
        """Wait for a line, a second Ctrl+C or the end of input (the caller has shown `prompt`)."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[str | None] = loop.create_future()

        def settle(line: str) -> None:
            if not answer.done():
                answer.set_result(line or None)

        def read() -> None:
            stream = self._stream if self._stream is not None else sys.stdin
            try:
                line = stream.readline()
            except (OSError, ValueError):  # closed, or not readable
                line = ""
            if line and not stream.isatty():
                sys.stdout.write(line)  # piped in: show the answer, as a keyboard would have echoed it
                sys.stdout.flush()
            with contextlib.suppress(RuntimeError):  # the loop ended while we were reading
                loop.call_soon_threadsafe(settle, str(line))

        # A daemon thread: a question nobody answers must not keep the program from ending.
        threading.Thread(target=read, name="answer", daemon=True).start()

        async def again() -> str | None:
            await self._interrupts.pressed.wait()
            return None

        second = asyncio.ensure_future(again())
        try:
            await asyncio.wait([answer, second], return_when=asyncio.FIRST_COMPLETED)
        finally:
            second.cancel()
        self._interrupts.pressed.clear()
        return answer.result() if answer.done() else None
