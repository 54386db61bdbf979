"""bot.media: probing real generated media, sniffing and compress-to-fit (credits: tests/media/test_billing.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
import pytest

import bot.media.compress as compress_mod
from bot.errors import InvalidInput
from bot.media import (
    MediaError,
    MediaInfo,
    compress_to_fit,
    extension_matches,
    probe,
    probe_audio,
    probe_video,
    sniff_kind,
)
from bot.testmedia import make_audio, make_video, run_ffmpeg

AUDIO_EXTS = ("wav", "mp3", "m4a", "ogg", "opus", "flac")
LABEL = "Magic Hour SANDBOX result - not lip-synced"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real media made once for this module (names are what the files are; `liar_*` lie)."""
    folder = tmp_path_factory.mktemp("media")
    files = {name: folder / name for name in ("face.mp4", "silent.mp4", "clip.webm", "clip.mov", "big.mp4")}
    files |= {f"tone.{ext}": folder / f"tone.{ext}" for ext in (*AUDIO_EXTS, "aac")}
    lavfi_video = ["-f", "lavfi", "-i", "testsrc2=size=64x64:rate=25:duration=1"]
    lavfi_sine = ["-f", "lavfi", "-i", "sine=frequency=330:duration=1"]

    async def make() -> None:
        await asyncio.gather(
            make_video(files["face.mp4"], seconds=2.0, fps=25, size=(160, 120)),
            make_video(files["silent.mp4"], seconds=2.0, fps=30, size=(160, 120), with_audio=False),
            *(make_audio(files[f"tone.{ext}"], seconds=1.5) for ext in (*AUDIO_EXTS, "aac")),
            run_ffmpeg([*lavfi_video, *lavfi_sine, "-c:v", "libvpx-vp9", "-c:a", "libopus", str(files["clip.webm"])]),
            run_ffmpeg([*lavfi_video, "-c:v", "libx264", "-f", "mov", str(files["clip.mov"])]),
            run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1", str(folder / "face.png")]),
            run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1", str(folder / "face.jpg")]),
            # An MP3 with album art: a video stream flagged attached_pic.
            run_ffmpeg(
                [
                    *lavfi_sine,
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=64x64",
                    "-map",
                    "0",
                    "-map",
                    "1",
                    "-frames:v",
                    "1",
                    "-c:v",
                    "mjpeg",
                    "-disposition:v",
                    "attached_pic",
                    "-c:a",
                    "libmp3lame",
                    str(folder / "cover.mp3"),
                ]
            ),
            # 8 s of noisy 640x480 at 30 fps and 4 Mbit/s: a few MB that compress well.
            run_ffmpeg(
                [
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=640x480:rate=30:duration=8",
                    "-f",
                    "lavfi",
                    "-i",
                    "sine=frequency=220:duration=8",
                    "-vf",
                    "noise=alls=20:allf=t",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-b:v",
                    "4M",
                    "-c:a",
                    "aac",
                    "-b:a",
                    "128k",
                    "-metadata",
                    f"title={LABEL}",
                    "-t",
                    "8",
                    str(files["big.mp4"]),
                ]
            ),
        )

    asyncio.run(make())
    files["face.png"] = folder / "face.png"
    files["face.jpg"] = folder / "face.jpg"
    files["cover.mp3"] = folder / "cover.mp3"
    files["notes.txt"] = folder / "notes.txt"
    files["notes.txt"].write_text("these are not the frames you are looking for\n")
    files["empty.mp4"] = folder / "empty.mp4"
    files["empty.mp4"].touch()
    files["noise.bin"] = folder / "noise.bin"
    files["noise.bin"].write_bytes(bytes(range(256)) * 4)
    return files


def assert_media_error(exc: pytest.ExceptionInfo[MediaError], code: str, filename: str) -> None:
    """A code and data, never a sentence; the data names the member's file, never the temporary path."""
    assert isinstance(exc.value, InvalidInput)
    assert exc.value.code == code
    assert exc.value.data == {"filename": filename}
    message = exc.value.user_message
    assert filename in message and "/" not in message
    assert not message.startswith("Something went wrong")  # the catalogue has words for this code


# --- probe -----------------------------------------------------------------------------------


async def test_probe_reads_a_real_mp4(media: dict[str, Path]) -> None:
    info = await probe(media["face.mp4"], label="face.mp4")
    assert isinstance(info, MediaInfo)
    assert "mp4" in info.format_name
    assert info.duration == pytest.approx(2.0, abs=0.05)
    assert info.has_video and info.has_audio
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height) == (160, 120)
    assert info.fps == pytest.approx(25.0)
    assert info.frame_count == 50
    assert info.size_bytes == media["face.mp4"].stat().st_size
    assert (info.average_rate, info.nominal_rate, info.guessed_rate) == (25.0, 25.0, 25.0)
    assert info.counted_frames == 50 and info.counted_seconds == pytest.approx(2.0)
    assert info.rate_verdict == "constant" and info.constant_fps == 25.0 and info.rate_consistent
    assert not info.has_cover_art and not info.is_still_image


async def test_probe_webm_and_mov(media: dict[str, Path]) -> None:
    webm = await probe_video(media["clip.webm"], filename="clip.webm")
    assert (webm.video_codec, webm.audio_codec) == ("vp9", "opus")
    assert webm.duration == pytest.approx(1.0, abs=0.1)
    assert webm.fps == pytest.approx(25.0)
    mov = await probe_video(media["clip.mov"], filename="clip.mov")
    assert mov.has_video and not mov.has_audio
    assert mov.duration == pytest.approx(1.0, abs=0.05)


async def test_probe_mp4_without_audio(media: dict[str, Path]) -> None:
    info = await probe_video(media["silent.mp4"], filename="silent.mp4")
    assert info.has_video and not info.has_audio
    assert info.audio_codec is None
    assert info.fps == pytest.approx(30.0)


@pytest.mark.parametrize("ext", [*AUDIO_EXTS, "aac"])
async def test_probe_audio_formats(media: dict[str, Path], ext: str) -> None:
    info = await probe_audio(media[f"tone.{ext}"], filename=f"voice.{ext}")
    assert info.has_audio and not info.has_video
    assert info.video_codec is None and info.fps is None and info.width is None
    assert info.rate_verdict == "no_video" and info.counted_frames is None and not info.rate_consistent
    assert info.duration == pytest.approx(1.5, abs=0.1)


async def test_mp3_with_cover_art_is_audio(media: dict[str, Path]) -> None:
    info = await probe_audio(media["cover.mp3"], filename="song.mp3")
    assert info.has_cover_art and not info.has_video
    with pytest.raises(MediaError) as exc:
        await probe_video(media["cover.mp3"], filename="song.mp3")
    assert_media_error(exc, "not_a_video", "song.mp3")


async def test_text_named_mp4_is_not_media(media: dict[str, Path]) -> None:
    with pytest.raises(MediaError) as exc:
        await probe_video(media["notes.txt"], filename="clip.mp4")
    assert_media_error(exc, "not_media_video", "clip.mp4")
    with pytest.raises(MediaError) as exc:
        await probe(media["notes.txt"], label="clip.mp4")
    assert_media_error(exc, "not_media", "clip.mp4")
    with pytest.raises(MediaError) as exc:
        await probe_audio(media["noise.bin"], filename="voice.mp3")
    assert_media_error(exc, "not_media_audio", "voice.mp3")


async def test_empty_file(media: dict[str, Path]) -> None:
    with pytest.raises(MediaError) as exc:
        await probe_video(media["empty.mp4"], filename="clip.mp4")
    assert_media_error(exc, "empty_file", "clip.mp4")


@pytest.mark.parametrize("image", ["face.png", "face.jpg"])
async def test_still_image_named_mp4(media: dict[str, Path], image: str) -> None:
    with pytest.raises(MediaError) as exc:
        await probe_video(media[image], filename="face.mp4")
    assert_media_error(exc, "still_image_video", "face.mp4")
    with pytest.raises(MediaError) as exc:
        await probe_audio(media[image], filename="voice.mp3")
    assert_media_error(exc, "still_image_audio", "voice.mp3")


async def test_audio_in_the_video_slot(media: dict[str, Path]) -> None:
    with pytest.raises(MediaError) as exc:
        await probe_video(media["tone.mp3"], filename="song.mp3")
    assert_media_error(exc, "not_a_video", "song.mp3")


async def test_video_in_the_audio_slot(media: dict[str, Path]) -> None:
    with pytest.raises(MediaError) as exc:
        await probe_audio(media["face.mp4"], filename="clip.mp4")
    assert_media_error(exc, "audio_has_video", "clip.mp4")
    with pytest.raises(MediaError) as exc:
        await probe_audio(media["silent.mp4"], filename="clip.mp4")
    assert_media_error(exc, "no_sound", "clip.mp4")


# --- sniff -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("face.mp4", "mp4"),
        ("clip.mov", "mov"),
        ("clip.webm", "webm"),
        ("tone.wav", "wav"),
        ("tone.mp3", "mp3"),
        ("cover.mp3", "mp3"),
        ("tone.m4a", "m4a"),
        ("tone.aac", "aac"),
        ("tone.ogg", "ogg"),
        ("tone.opus", "ogg"),
        ("tone.flac", "flac"),
        ("face.png", "png"),
        ("face.jpg", "jpeg"),
        ("notes.txt", "text"),
        ("empty.mp4", "empty"),
        ("noise.bin", None),
    ],
)
def test_sniff_kind(media: dict[str, Path], name: str, kind: str | None) -> None:
    assert sniff_kind(media[name]) == kind


def test_sniff_looks_past_an_id3_tag(tmp_path: Path) -> None:
    tagged = tmp_path / "x.flac"
    tagged.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x05" + b"\x00" * 5 + b"fLaC\x00\x00\x00\x22")
    assert sniff_kind(tagged) == "flac"
    mkv = tmp_path / "x.mkv"
    mkv.write_bytes(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska")
    assert sniff_kind(mkv) == "mkv"


@pytest.mark.parametrize(
    ("kind", "extension", "expected"),
    [
        ("mp4", "mp4", True),
        ("mov", "mp4", True),
        ("mp4", ".MOV", True),
        ("m4a", "m4a", True),
        ("webm", "webm", True),
        ("mkv", "webm", True),
        ("ogg", "opus", True),
        ("mp3", "mp3", True),
        ("mp4", "mp3", False),
        ("text", "mp4", False),
        ("png", "mp4", False),
        ("empty", "mp4", False),
        (None, "mp4", False),
    ],
)
def test_extension_matches(kind: str | None, extension: str, expected: bool) -> None:
    assert extension_matches(kind, extension) is expected


# --- compress_to_fit ---------------------------------------------------------------------------


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_compress_to_half_size(media: dict[str, Path], tmp_path: Path) -> None:
    src = media["big.mp4"]
    target = src.stat().st_size // 2
    dest = tmp_path / "small.mp4"
    assert await compress_to_fit(src, dest, target) == dest
    assert dest.stat().st_size <= target
    assert leftovers(tmp_path) == ["small.mp4"]
    info = await probe_video(dest, filename="small.mp4")
    assert info.has_audio and info.video_codec == "h264"
    assert info.duration == pytest.approx(8.0, abs=0.2)
    with av.open(str(dest)) as container:
        assert container.metadata.get("title") == LABEL


async def test_compress_scales_down_when_bits_are_few(media: dict[str, Path], tmp_path: Path) -> None:
    dest = tmp_path / "tiny.mp4"
    assert await compress_to_fit(media["big.mp4"], dest, 400_000) == dest
    assert dest.stat().st_size <= 400_000
    info = await probe(dest)
    assert (info.width, info.height) == (480, 360)


async def test_compress_target_too_small(media: dict[str, Path], tmp_path: Path) -> None:
    dest = tmp_path / "never.mp4"
    assert await compress_to_fit(media["big.mp4"], dest, 60_000) is None
    assert leftovers(tmp_path) == []


async def test_compress_refuses_non_video(media: dict[str, Path], tmp_path: Path) -> None:
    assert await compress_to_fit(media["notes.txt"], tmp_path / "a.mp4", 1_000_000) is None
    assert await compress_to_fit(media["tone.wav"], tmp_path / "b.mp4", 1_000_000) is None
    assert leftovers(tmp_path) == []


async def test_compress_retries_once_lower(media: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    """An encoder overshoot is retried at a lower bitrate; a second overshoot gives up cleanly."""
    bitrates: list[int] = []
    sizes = iter([600_000, 400_000])

    async def fake_encode(src, out, info, video_bitrate, passlog) -> None:
        bitrates.append(video_bitrate)
        out.write_bytes(b"\x00" * next(sizes))

    monkeypatch.setattr(compress_mod, "_encode", fake_encode)
    dest = tmp_path / "r.mp4"
    assert await compress_to_fit(media["big.mp4"], dest, 500_000) == dest
    assert len(bitrates) == 2 and bitrates[1] < bitrates[0]
    assert leftovers(tmp_path) == ["r.mp4"]

    bitrates.clear()
    sizes = iter([600_000, 550_000])
    dest.unlink()
    assert await compress_to_fit(media["big.mp4"], dest, 500_000) is None
    assert len(bitrates) == 2
    assert leftovers(tmp_path) == []


async def test_compress_cancel_kills_ffmpeg(media: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    started = asyncio.Event()
    procs: list[asyncio.subprocess.Process] = []
    real_exec = asyncio.create_subprocess_exec

    async def spy_exec(*args, **kwargs):
        proc = await real_exec(*args, **kwargs)
        procs.append(proc)
        started.set()
        return proc

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spy_exec)
    task = asyncio.create_task(compress_to_fit(media["big.mp4"], tmp_path / "c.mp4", 2_000_000))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert procs and procs[0].returncode is not None
    assert leftovers(tmp_path) == []
