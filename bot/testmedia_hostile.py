"""Generate hostile media: files a member could craft to hurt the bot, made on demand, never stored.

For the tests and `bench/bench_hostile_media.py`, which check that each is refused (or read) within
the probe's bounds (`bot.media.bounded`, `bot.media.accept`). `CORPUS` lists them all, each under
the name a member would send it by and with what it is; `make_corpus` writes them.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av

from bot.testmedia import make_audio, make_video, run_ffmpeg

_CHUNK = 1 << 22  # zeros compressed at a time; after a full flush each chunk compresses alike
_ADLER_MOD = 65521

WrongContainer = Literal["mpegts", "nut_ffv1", "nut_magicyuv", "caf", "mkv_ffv1"]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(side: int, *, depth: int = 16) -> bytes:
    """A valid PNG of `side`×`side` RGBA pixels at `depth` bits, every pixel zero: a few MB at most."""
    row = 1 + side * 4 * depth // 8  # the filter byte (0: none), then the pixels
    total = row * side
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: header and checksum added below
    chunk = bytes(_CHUNK)
    first = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    repeat = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    count, rest = divmod(total, _CHUNK)
    body = first + repeat * (count - 1) + deflate.compress(bytes(rest)) + deflate.flush()
    # Adler-32 of `total` zero bytes: a stays 1, b grows by 1 a byte.
    adler = (total % _ADLER_MOD) << 16 | 1
    idat = b"\x78\xda" + body + struct.pack(">I", adler)
    header = struct.pack(">IIBBBBB", side, side, depth, 6, 0, 0, 0)  # colour type 6: RGBA
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _mux_png_streams(path: Path, picture: bytes, side: int, streams: int) -> Path:
    with av.open(str(path), "w", format="mov") as out:
        outputs = []
        for _ in range(streams):
            stream = out.add_stream("png", rate=1)
            stream.width = stream.height = side
            stream.pix_fmt = "rgba64be"
            outputs.append(stream)
        for stream in outputs:
            packet = av.Packet(picture)
            packet.stream = stream
            packet.pts = packet.dts = 0
            packet.duration = 1
            packet.time_base = Fraction(1, 1)
            out.mux(packet)
    return path


async def make_png_bomb(path: Path, *, side: int = 16000, streams: int = 2) -> Path:
    """A MOV of `streams` one-frame PNG video streams, each `side`×`side` at 16 bits (no decoding).

    Each picture compresses a run of zeros to a couple of MB and decodes to 0.5-2 GiB; it is built
    byte by byte (`png_bomb`: the deflate stream repeats one flushed block) and muxed without
    decoding, so making one costs nothing.
    """
    picture = await asyncio.to_thread(png_bomb, side)
    return await asyncio.to_thread(_mux_png_streams, path, picture, side, streams)


def _syncsafe(size: int) -> bytes:
    return bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))


async def make_cover_art_bomb(path: Path, *, side: int = 16000) -> Path:
    """An MP3 whose cover picture (an ID3 APIC frame) is a `side`×`side` 16-bit PNG."""
    await run_ffmpeg(["-f", "lavfi", "-i", "sine=frequency=330:duration=1", "-c:a", "libmp3lame", str(path)])
    picture = await asyncio.to_thread(png_bomb, side)
    # ID3v2.3: an APIC frame (text encoding, MIME type, picture type 3 = front cover, no description).
    frame = b"\x00image/png\x00\x03\x00" + picture
    tag = b"APIC" + struct.pack(">I", len(frame)) + b"\x00\x00" + frame
    header = b"ID3\x03\x00\x00" + _syncsafe(len(tag))
    audio = await asyncio.to_thread(path.read_bytes)
    await asyncio.to_thread(path.write_bytes, header + tag + audio)
    return path


async def make_lying_h264(path: Path, *, real: tuple[int, int] = (4200, 128), claimed: int = 64) -> Path:
    """A MOV whose sample description says `claimed`² while its H.264 stream is `real` (w, h) pixels."""
    width, height = real
    source = ["-f", "lavfi", "-i", f"color=c=gray:size={width}x{height}:rate=25:duration=0.2"]
    await run_ffmpeg(
        [*source, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "mov", str(path)]
    )
    data = bytearray(await asyncio.to_thread(path.read_bytes))
    # The avc1 sample entry: type, 6 reserved bytes, a reference index, 16 bytes, then width, height.
    at = data.index(b"avc1") + 4 + 6 + 2 + 16
    data[at : at + 4] = struct.pack(">HH", claimed, claimed)
    await asyncio.to_thread(path.write_bytes, bytes(data))
    return path


async def make_wrong_container(path: Path, container: WrongContainer) -> Path:
    """A real clip in a container (or codec) the bot doesn't take, whatever `path`'s name says."""
    video = ["-f", "lavfi", "-i", "testsrc2=size=64x64:rate=25:duration=1"]
    sine = ["-f", "lavfi", "-i", "sine=frequency=330:duration=1"]
    recipes = {
        "mpegts": [*video, *sine, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-f", "mpegts"],
        "nut_ffv1": [*video, "-c:v", "ffv1", "-f", "nut"],
        "nut_magicyuv": [*video, "-c:v", "magicyuv", "-f", "nut"],
        "caf": [*sine, "-c:a", "alac", "-f", "caf"],
        "mkv_ffv1": [*video, *sine, "-c:v", "ffv1", "-c:a", "libopus", "-f", "matroska"],
    }
    await run_ffmpeg([*recipes[container], str(path)])
    return path


async def make_many_streams(path: Path, *, streams: int = 20) -> Path:
    """An M4A with `streams` separate AAC tracks."""
    sine = ["-f", "lavfi", "-i", "sine=frequency=330:duration=1"]
    maps = [arg for _ in range(streams) for arg in ("-map", "0:a")]
    await run_ffmpeg([*sine, *maps, "-c:a", "aac", "-f", "ipod", str(path)])
    return path


@dataclass(frozen=True)
class Hostile:
    """One file of the corpus: the name a member would send it under, its slot, how it's made."""

    name: str
    slot: Literal["video", "audio"]
    what: str
    make: Callable[[Path], Awaitable[Path]]


CORPUS: tuple[Hostile, ...] = (
    Hostile("bomb-16k.mov", "video", "2 PNG streams, 16000×16000 at 16 bits", lambda p: make_png_bomb(p)),
    Hostile(
        "bomb-8k.mov", "video", "3 PNG streams, 8000×8000 at 16 bits", lambda p: make_png_bomb(p, side=8000, streams=3)
    ),
    Hostile("liar.mov", "video", "H.264 4200 px wide, its container says 64×64", lambda p: make_lying_h264(p)),
    Hostile("cover.mp3", "audio", "MP3 whose cover art is a 16000×16000 16-bit PNG", lambda p: make_cover_art_bomb(p)),
    Hostile("ts.mp4", "video", "MPEG-TS named .mp4", lambda p: make_wrong_container(p, "mpegts")),
    Hostile("ffv1.mov", "video", "NUT with FFV1 named .mov", lambda p: make_wrong_container(p, "nut_ffv1")),
    Hostile("magicyuv.mov", "video", "NUT with MagicYUV named .mov", lambda p: make_wrong_container(p, "nut_magicyuv")),
    Hostile("caf.m4a", "audio", "CAF (ALAC) named .m4a", lambda p: make_wrong_container(p, "caf")),
    Hostile("ffv1.webm", "video", "Matroska with FFV1 named .webm", lambda p: make_wrong_container(p, "mkv_ffv1")),
    Hostile("tracks.m4a", "audio", "M4A with 20 audio tracks", lambda p: make_many_streams(p)),
    Hostile("short.mp4", "video", "a 0.08 s video", lambda p: make_video(p, seconds=0.08)),
    Hostile("short.wav", "audio", "a 0.05 s voice", lambda p: make_audio(p, seconds=0.05)),
)


async def make_corpus(folder: Path) -> dict[str, Path]:
    """Every file of `CORPUS` in `folder`, by name."""
    paths = await asyncio.gather(*(item.make(folder / item.name) for item in CORPUS))
    return {item.name: path for item, path in zip(CORPUS, paths, strict=True)}
