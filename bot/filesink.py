"""`FileSink`: a file filled from the event loop, written to disk in large batches by a worker thread.

A download's body arrives in pieces of up to a few hundred KiB. Each piece is copied at once into
one reusable buffer and let go; a full buffer is written by a worker thread, so the disk never
blocks the event loop, and memory stays at one buffer whatever the file size. Why not a list of
pieces, or two buffers: docs/benchmarks.md, "Downloads beside curl".
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

#: The size of one batch (each of the two buffers): few enough hand-offs to a thread to cost
#: nothing next to the bytes, small enough that memory stays flat.
WRITE_BATCH = 4 * 1024 * 1024


#: Each batch reaches the kernel in writes of at most this size: 1 GiB written in 4 MiB calls
#: cost 1.2-2.6 s of kernel time, in 16-128 KiB calls 0.2-1.1 s (2-core virtual machine; most
#: likely because Linux sizes page-cache pages after the write, and large ones are dear when
#: memory is fragmented).
WRITE_SLICE = 64 * 1024


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data[:WRITE_SLICE]) :]


class FileSink:
    """Bytes fed in order with `write`, on disk after `finish`; `close` always, even after an error.

    `written` counts the bytes on disk so far. Create one with `await FileSink.create(path)`, which
    opens `path` for writing and truncates it. `size_hint` (the expected size, when known) keeps the
    buffer no larger than the file needs.
    """

    def __init__(self, fd: int, *, batch: int = WRITE_BATCH, size_hint: int | None = None) -> None:
        if batch <= 0:
            raise ValueError("batch must be positive")
        if size_hint is not None:
            batch = max(1, min(batch, size_hint))
        self._fd: int | None = fd
        self._buffer = bytearray(batch)
        self._filled = 0
        self._in_flight: asyncio.Future[None] | None = None
        self.written = 0

    @classmethod
    async def create(cls, path: Path, *, batch: int = WRITE_BATCH, size_hint: int | None = None) -> FileSink:
        """Open `path` for writing (created or truncated) and return a sink over it."""
        fd = await asyncio.to_thread(os.open, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        return cls(fd, batch=batch, size_hint=size_hint)

    async def write(self, piece: bytes | bytearray | memoryview) -> None:
        """Take `piece`: copy it into the buffer, writing the buffer out each time it fills."""
        view = memoryview(piece).cast("B")
        size = len(self._buffer)
        while view:
            take = min(len(view), size - self._filled)
            self._buffer[self._filled : self._filled + take] = view[:take]
            self._filled += take
            view = view[take:]
            if self._filled == size:
                await self._flush()

    async def finish(self) -> int:
        """Write what is buffered; return `written`, everything fed so far, now on disk."""
        if self._filled:
            await self._flush()
        return self.written

    def close(self) -> None:
        """Close the file: now, or (after a cancellation) when the write in flight ends.

        The descriptor must outlive a worker thread still writing to it: closed earlier, the
        thread could write into whatever file next reuses the number.
        """
        fd, self._fd = self._fd, None
        if fd is None:
            return
        in_flight = self._in_flight
        if in_flight is None or in_flight.done():
            os.close(fd)
        else:
            in_flight.add_done_callback(lambda done: _close_after(done, fd))

    async def _flush(self) -> None:
        """Write the buffer in a worker thread and wait for it; an error is raised here."""
        if self._fd is None:
            raise ValueError("write to a closed FileSink")
        if self._in_flight is not None:
            raise RuntimeError("an earlier write failed or was cancelled; the sink can only be closed")
        # A plain executor future, not a task: nothing (not even the loop's shutdown) marks it
        # done before the thread has finished with the descriptor and the buffer. Shielded, so
        # a cancelled caller leaves it running rather than pretending it stopped.
        loop = asyncio.get_running_loop()
        in_flight = loop.run_in_executor(None, _write_all, self._fd, memoryview(self._buffer)[: self._filled])
        self._in_flight = in_flight
        await asyncio.shield(in_flight)
        self._in_flight = None
        self.written += self._filled
        self._filled = 0


def _close_after(done: asyncio.Future[None], fd: int) -> None:
    # The write's own error belongs to a sink already given up on; retrieve it so it isn't logged.
    if not done.cancelled():
        done.exception()
    os.close(fd)
