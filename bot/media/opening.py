"""Opening a member's file safely: the headers first, with every decoder off, then only what's needed.

This is what the probe's child process runs (`bot.media.bounded`), never the bot itself. A refusal
is a catalogue code without its slot suffix, and its data; the caller adds the member's file name
and the slot's wording. docs/design-notes.md, "Media", describes the two passes and why.
"""

from __future__ import annotations

import base64
import dataclasses
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import av.error
from av.container import InputContainer
from av.stream import Disposition
from av.video.codeccontext import VideoCodecContext

from bot.media.accept import DEMUXER_MAX_STREAMS, MAX_FRAME_SIDE, Slot, StreamHeader, judge_headers, rules_for
from bot.media.probe import MediaInfo, describe
from bot.media.sniff import sniff_kind

# A thumbnail's longer side, and the most its JPEG may weigh (its base64 fits the child's one answer).
THUMB_SIDE = 320
MAX_THUMB_BYTES = 40_000
# Frames past this many pixels are refused by FFmpeg's decoders before a buffer is allocated.
_MAX_PIXELS = MAX_FRAME_SIDE * MAX_FRAME_SIDE
_NO_DECODER = "none"  # a `codec_whitelist` that names no decoder: the stream is never decoded
_IMAGE_KINDS = frozenset({"png", "jpeg", "gif", "webp"})
_SOUND_KINDS = frozenset({"mp3", "aac", "wav", "ogg", "flac", "aiff", "amr"})


class _Refused(Exception):
    """Inside the child: the file is refused (a catalogue code without its slot suffix, and data)."""

    def __init__(self, code: str, **data: str | int) -> None:
        super().__init__(code)
        self.code = code
        self.data = data


def _container_options(slot: Slot, **extra: str) -> dict[str, str]:
    return {
        "format_whitelist": rules_for(slot).format_whitelist,
        "protocol_whitelist": "file",
        "max_streams": str(DEMUXER_MAX_STREAMS),
        **extra,
    }


def _open(
    path: Path, slot: Slot, container_options: dict[str, str], stream_options: list[dict[str, str]] | None = None
) -> InputContainer:
    """Open with only the slot's demuxers allowed; refuse what can't be opened, saying why."""
    try:
        # PyAV's stub types `stream_options` as a list of str; it takes one dict per stream.
        per_stream = cast("list[str]", stream_options or [])
        return av.open(str(path), mode="r", container_options=container_options, stream_options=per_stream)
    except av.error.MemoryError as exc:  # past `max_streams`, or the memory cap
        raise _Refused("media_too_complex") from exc
    except av.error.ArgumentError as exc:  # detected as a format not on the slot's list
        kind = sniff_kind(path)
        code = "still_image" if kind in _IMAGE_KINDS else "not_media" if kind == "text" else "unsupported_format"
        if slot == "_video" and kind in _SOUND_KINDS:
            code = "not_a_video"  # a plain audio file: say what's missing, not which formats work
        raise _Refused(code) from exc
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise _Refused("not_media") from exc


def _headers(path: Path, slot: Slot) -> tuple[list[StreamHeader], list[str]]:
    """Every stream as the headers describe it, and its decoder's name: nothing is decoded."""
    with _open(path, slot, _container_options(slot, codec_whitelist=_NO_DECODER)) as container:
        headers, decoders = [], []
        for stream in container.streams:
            context = stream.codec_context
            picture = context if isinstance(context, VideoCodecContext) else None
            headers.append(
                StreamHeader(
                    kind=stream.type,
                    codec=context.codec.canonical_name if context is not None else None,
                    width=picture.width if picture is not None else 0,
                    height=picture.height if picture is not None else 0,
                    cover_art=bool(stream.disposition & Disposition.attached_pic),
                    frames=stream.frames,
                )
            )
            decoders.append(context.name if context is not None else _NO_DECODER)
        return headers, decoders


def _decoded(headers: list[StreamHeader]) -> set[int]:
    """The streams worth decoding: the first real video and the first audio (as `_describe` uses)."""
    video = next((i for i, s in enumerate(headers) if s.kind == "video" and not s.cover_art), None)
    audio = next((i for i, s in enumerate(headers) if s.kind == "audio"), None)
    return {i for i in (video, audio) if i is not None}


def read_media(path: Path, slot: Slot, *, max_frames: int, max_seconds: float) -> MediaInfo:
    """Read a file's media facts, refusing what the slot doesn't accept (blocking; the child runs it).

    First the headers alone, with every decoder off: the container must be on the slot's list,
    and its streams' count, codecs and frame sizes within `bot.media.accept`. Only then is it
    opened again with the one video and one audio decoder it needs switched on, each refusing
    frames past `MAX_FRAME_SIDE` squared before allocating them.
    """
    size = path.stat().st_size
    headers, decoders = _headers(path, slot)
    refusal = judge_headers(headers, slot)
    if refusal is not None:
        raise _Refused(refusal.code, **refusal.data)
    wanted = _decoded(headers)
    stream_options = [
        {"codec_whitelist": decoder if i in wanted else _NO_DECODER, "max_pixels": str(_MAX_PIXELS)}
        for i, decoder in enumerate(decoders)
    ]
    container = _open(path, slot, _container_options(slot), stream_options)
    with container:
        info = describe(container, size, max_frames=max_frames, max_seconds=max_seconds)
    if max(info.width or 0, info.height or 0) > MAX_FRAME_SIDE:  # the codec's own header said more
        raise _Refused("frame_too_large", width=info.width or 0, height=info.height or 0, limit=MAX_FRAME_SIDE)
    return info


def first_frame_jpeg(path: Path) -> bytes | None:
    """The first frame of a file the video probe accepted, as a small JPEG; None when there is none.

    Opened as the probe opens it: the headers first with every decoder off, then only the first
    video stream's decoder, refusing frames past `MAX_FRAME_SIDE` squared before allocating them.
    """
    headers, decoders = _headers(path, "_video")
    if judge_headers(headers, "_video") is not None:
        return None
    video = next((i for i, s in enumerate(headers) if s.kind == "video" and not s.cover_art), None)
    if video is None:
        return None
    stream_options = [
        {"codec_whitelist": decoder if i == video else _NO_DECODER, "max_pixels": str(_MAX_PIXELS)}
        for i, decoder in enumerate(decoders)
    ]
    with _open(path, "_video", _container_options("_video"), stream_options) as container:
        for frame in container.decode(container.streams[video]):
            return _jpeg(frame) if isinstance(frame, av.VideoFrame) else None
    return None


def _jpeg(frame: av.VideoFrame) -> bytes | None:
    """`frame` scaled to at most `THUMB_SIDE` on its longer side, encoded by FFmpeg's own JPEG encoder."""
    scale = min(1.0, THUMB_SIDE / max(frame.width, frame.height, 1))
    width, height = (max(2, round(side * scale) // 2 * 2) for side in (frame.width, frame.height))
    encoder = av.CodecContext.create("mjpeg", "w")
    assert isinstance(encoder, VideoCodecContext)
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    picture = frame.reformat(width=width, height=height, format="yuvj420p")
    data = b"".join(bytes(packet) for packet in [*encoder.encode(picture), *encoder.encode(None)])
    return data if 0 < len(data) <= MAX_THUMB_BYTES else None


def answer_for(request: dict[str, Any]) -> dict[str, Any]:
    """The child's answer to a probe request (`bot.media.bounded`): the facts, or why it's refused.

    A request with `"thumbnail"` asks for the first frame instead (`first_frame_jpeg`), in base64.
    """
    if request.get("thumbnail"):
        try:
            jpeg = first_frame_jpeg(Path(request["path"]))
        except (_Refused, av.error.FFmpegError, ValueError):
            jpeg = None
        return {"thumbnail": base64.b64encode(jpeg).decode("ascii") if jpeg is not None else None}
    try:
        info = read_media(
            Path(request["path"]),
            request["slot"],
            max_frames=request["max_frames"],
            max_seconds=request["max_seconds"],
        )
    except _Refused as refused:
        return {"refused": refused.code, "data": refused.data}
    return {"info": dataclasses.asdict(info)}
