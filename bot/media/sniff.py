"""A cheap look at a file's first bytes, so a name that lies is caught before the heavier probe.

`sniff_kind` names the container family; `extension_matches` says whether a file extension may
honestly carry that family. Unknown content (None) is not evidence either way: leave it to `probe`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

_HEAD_BYTES = 512
# Container families and the extensions that may carry them. ISO BMFF brands are unreliable
# (phones write `qt  ` into .mp4 and `isom` into .mov), so the whole family shares one set.
_ISO_BMFF = frozenset({"mp4", "m4v", "mov", "qt", "m4a", "m4b", "3gp", "3g2"})
_MATROSKA = frozenset({"webm", "weba", "mkv", "mka"})
_OGG = frozenset({"ogg", "oga", "ogv", "opus"})
_EXTENSIONS: dict[str, frozenset[str]] = {
    "mp4": _ISO_BMFF,
    "mov": _ISO_BMFF,
    "m4a": _ISO_BMFF,
    "webm": _MATROSKA,
    "mkv": _MATROSKA,
    "ogg": _OGG,
    "mp3": frozenset({"mp3"}),
    "aac": frozenset({"aac"}),
    "wav": frozenset({"wav", "wave"}),
    "flac": frozenset({"flac"}),
    "aiff": frozenset({"aiff", "aif", "aifc"}),
    "amr": frozenset({"amr"}),
    "avi": frozenset({"avi"}),
    "png": frozenset({"png"}),
    "jpeg": frozenset({"jpg", "jpeg", "jfif"}),
    "gif": frozenset({"gif"}),
    "webp": frozenset({"webp"}),
    "text": frozenset({"txt", "srt", "vtt", "json", "html", "htm", "csv", "md"}),
}


def _id3_size(head: bytes) -> int | None:
    """Total size of a leading ID3v2 tag, or None if the file does not start with one."""
    if len(head) < 10 or head[:3] != b"ID3":
        return None
    # The tag size is four "syncsafe" bytes of 7 bits each; a footer adds 10 bytes.
    size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
    return 10 + size + (10 if head[5] & 0x10 else 0)


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut off at the end of the sample is still text.
        if exc.start < len(head) - 3:
            return False
        text = head[: exc.start].decode("utf-8")
    printable = sum(ch.isprintable() or ch in "\t\r\n" for ch in text)
    return printable >= 0.95 * max(len(text), 1)


def _matroska_kind(head: bytes) -> str:
    # The EBML header names its DocType within the first few dozen bytes.
    return "webm" if b"webm" in head[:64] else "mkv"


def _mpeg_audio_kind(head: bytes) -> str | None:
    """MPEG audio frame sync: layer bits 00 are ADTS (AAC), anything else MPEG-1/2 audio."""
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "aac" if head[1] & 0x06 == 0 else "mp3"
    return None


_ANY = ord("?")
# How files start, first match wins: `?` stands for any byte, and a pattern needs the head to be
# at least as long as itself. A kind of None is a family recognised but not one the bot knows.
_SIGNATURES: tuple[tuple[bytes, str | Callable[[bytes], str] | None], ...] = (
    (b"????ftypqt  ", "mov"),
    (b"????ftypM4A ", "m4a"),
    (b"????ftypM4B ", "m4a"),
    (b"????ftypM4P ", "m4a"),
    (b"????ftyp????", "mp4"),
    (b"\x1a\x45\xdf\xa3", _matroska_kind),
    (b"RIFF????WAVE", "wav"),
    (b"RIFF????AVI ", "avi"),
    (b"RIFF????WEBP", "webp"),
    (b"RIFF????????", None),
    (b"FORM????AIFF", "aiff"),
    (b"FORM????AIFC", "aiff"),
    (b"OggS", "ogg"),
    (b"fLaC", "flac"),
    (b"#!AMR", "amr"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)


def _starts_like(head: bytes, pattern: bytes) -> bool:
    return len(head) >= len(pattern) and all(want in (_ANY, got) for got, want in zip(head, pattern, strict=False))


def _kind_of(head: bytes) -> str | None:
    for pattern, kind in _SIGNATURES:
        if _starts_like(head, pattern):
            return kind(head) if callable(kind) else kind
    mpeg = _mpeg_audio_kind(head)
    if mpeg is not None:
        return mpeg
    return "text" if _looks_like_text(head) else None


def sniff_kind(path: Path) -> str | None:
    """The container family a file's first bytes announce, or None if they match nothing known.

    Kinds: "mp4", "mov", "m4a" (ISO BMFF by brand), "webm", "mkv", "mp3", "aac", "wav", "ogg"
    (Vorbis or Opus), "flac", "aiff", "amr", "avi", "png", "jpeg", "gif", "webp", "text", and
    "empty" for a zero-byte file. Reads at most a few hundred bytes (plus a seek past an ID3 tag).
    """
    with path.open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
        if not head:
            return "empty"
        tag_size = _id3_size(head)
        if tag_size is None:
            return _kind_of(head)
        # ID3 tags front mostly MP3, but also AAC and FLAC: look at what follows the tag.
        handle.seek(tag_size)
        after = handle.read(16)
    inner = _kind_of(after) if after else None
    return inner if inner in ("mp3", "aac", "flac") else "mp3"


def extension_matches(kind: str | None, extension: str) -> bool:
    """Whether a file of this sniffed `kind` may honestly carry `extension` ("mp4" or ".MP4").

    False for an unknown kind: callers treat None as "can't tell" and let `probe` decide.
    """
    if kind is None:
        return False
    return extension.lower().lstrip(".") in _EXTENSIONS.get(kind, frozenset())
