"""`FileSink`: bytes in order on disk, batches written by a worker thread, a descriptor never closed
under a write still in flight."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

import bot.filesink as filesink
from bot.filesink import FileSink

MiB = 1024 * 1024


class StuckDisk:
    """Replaces the sink's disk writes with ones that wait until `release()` (or fail with `error`)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()
        self.threads: list[str] = []
        self.error: OSError | None = None

    def write_all(self, fd: int, data: memoryview) -> None:
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        assert self.released.wait(10), "the test never released the write"
        if self.error is not None:
            raise self.error
        os.write(fd, data)

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def stuck(monkeypatch: pytest.MonkeyPatch) -> Iterator[StuckDisk]:
    disk = StuckDisk()
    monkeypatch.setattr(filesink, "_write_all", disk.write_all)
    yield disk
    disk.release()  # never leave a worker thread waiting


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


async def test_pieces_land_in_order_across_batches(tmp_path: Path) -> None:
    """Pieces of every size, smaller and larger than a batch, arrive whole and in order."""
    pieces = [bytes([n % 251]) * size for n, size in enumerate([1, 7, 10, 3, 25, 0, 9, 1, 40, 2])]
    sink = await FileSink.create(tmp_path / "out.bin", batch=10)
    try:
        seen = []
        for piece in pieces:
            await sink.write(piece)
            seen.append(sink.written)
        total = await sink.finish()
    finally:
        sink.close()
    assert (tmp_path / "out.bin").read_bytes() == b"".join(pieces)
    assert total == sum(map(len, pieces)) == sink.written
    assert seen == sorted(seen) and all(count % 10 == 0 for count in seen)  # whole batches only


async def test_create_truncates_what_was_there(tmp_path: Path) -> None:
    """A second attempt at the same file starts from nothing."""
    target = tmp_path / "out.bin"
    target.write_bytes(b"left over from an attempt that failed")
    sink = await FileSink.create(target)
    try:
        await sink.write(b"new")
        await sink.finish()
    finally:
        sink.close()
    assert target.read_bytes() == b"new"


async def test_the_disk_is_written_off_the_event_loop(tmp_path: Path, stuck: StuckDisk) -> None:
    """While a write is stuck, the event loop keeps running (it would hang if it wrote itself)."""
    sink = await FileSink.create(tmp_path / "out.bin", batch=4)
    writing = asyncio.create_task(sink.write(b"abcdefgh"))
    assert await asyncio.to_thread(stuck.entered.wait, 10)
    assert not writing.done()
    stuck.release()
    await writing
    await sink.finish()
    sink.close()
    assert (tmp_path / "out.bin").read_bytes() == b"abcdefgh"
    assert threading.main_thread().name not in stuck.threads


async def test_cancelled_write_keeps_the_file_open_until_the_thread_is_done(tmp_path: Path, stuck: StuckDisk) -> None:
    """A download cancelled mid-write: `close` leaves the descriptor to the worker thread, which
    could otherwise write into whatever file reused the number."""
    sink = await FileSink.create(tmp_path / "out.bin", batch=4)
    fd = sink._fd
    assert fd is not None
    writing = asyncio.create_task(sink.write(b"abcd"))
    assert await asyncio.to_thread(stuck.entered.wait, 10)
    writing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writing
    sink.close()
    assert _is_open(fd)  # the thread is still writing to it
    stuck.release()
    for _ in range(1000):  # the close runs on the loop once the thread's future is done
        if not _is_open(fd):
            break
        await asyncio.sleep(0)
        await asyncio.to_thread(lambda: None)
    assert not _is_open(fd)
    assert (tmp_path / "out.bin").read_bytes() == b"abcd"
    with pytest.raises(ValueError, match="closed"):
        await sink.write(b"more")


async def test_a_failed_write_is_raised_and_the_file_still_closes(tmp_path: Path, stuck: StuckDisk) -> None:
    """A full disk: the error reaches the caller, and `close` still releases the descriptor."""
    stuck.error = OSError(errno.ENOSPC, "No space left on device")
    stuck.release()
    sink = await FileSink.create(tmp_path / "out.bin", batch=4)
    fd = sink._fd
    assert fd is not None
    with pytest.raises(OSError) as caught:
        await sink.write(b"abcdefgh")
    assert caught.value.errno == errno.ENOSPC
    assert sink.written == 0
    sink.close()
    assert not _is_open(fd)
    sink.close()  # twice is harmless


async def test_memory_stays_at_one_buffer(tmp_path: Path) -> None:
    """64 MiB fed in 256 KiB pieces allocate the pieces and one batch, not the file."""
    piece = b"\0" * (256 * 1024)
    tracemalloc.start()
    try:
        sink = await FileSink.create(tmp_path / "out.bin", batch=4 * MiB)
        try:
            for _ in range(256):
                await sink.write(piece)
            await sink.finish()
        finally:
            sink.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (tmp_path / "out.bin").stat().st_size == 64 * MiB
    assert peak < 6 * MiB, f"peak {peak / MiB:.1f} MiB"


async def test_a_size_hint_keeps_the_buffer_small(tmp_path: Path) -> None:
    """A 10-byte file doesn't get a 4 MiB buffer."""
    tracemalloc.start()
    try:
        sink = await FileSink.create(tmp_path / "out.bin", size_hint=10)
        try:
            await sink.write(b"0123456789")
            await sink.finish()
        finally:
            sink.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (tmp_path / "out.bin").read_bytes() == b"0123456789"
    assert peak < MiB


def test_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        FileSink(-1, batch=0)


async def test_the_kernel_gets_small_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 4 MiB batch reaches the kernel in writes of at most `WRITE_SLICE`: one large write makes
    Linux allocate large page-cache pages, several times dearer on a busy machine."""
    sizes: list[int] = []
    real_write = os.write

    def recording_write(fd: int, data: memoryview) -> int:
        sizes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", recording_write)  # the one `bot.filesink` calls
    sink = await FileSink.create(tmp_path / "out.bin", batch=4 * MiB)
    try:
        await sink.write(b"\1" * (4 * MiB + 5))
        await sink.finish()
    finally:
        sink.close()
    assert (tmp_path / "out.bin").stat().st_size == 4 * MiB + 5
    assert max(sizes) == filesink.WRITE_SLICE and sum(sizes) == 4 * MiB + 5
