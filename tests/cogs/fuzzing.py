"""Generated `/lipsync` requests, each with the outcome it must have (used by `test_fuzz.py`).

Every generator here builds its value from parts whose meaning it knows, so the expected
outcome comes from how the value was made, not from running the bot's own checks on it:

- names and file names: text with mentions (`<@id>`, `<@!id>`, `<@&id>`, `@everyone`, `@here`),
  markdown, control and bidi characters, astral-plane code points, up to the 100 code points the
  option allows;
- YouTube links: a grammar of parts (scheme, separator, user info, host, port, path, fragment,
  surrounding whitespace, a stray character), each part drawn either from forms the bot documents
  as accepted (`bot/jobs/youtube.py`) or from forms it documents as refused; a link is valid iff
  no part was spoiled, and then its video id is known;
- windows: `start`/`end` at and around the edges (0, subnormals, 0.1, the 60 s limit give or take
  a rounding error, the 2 s test video's end, 2**53);
- attachments: what the bytes really are, the extension the name claims, the content type the
  upload claims (case, parameters and all), and, now and then, an attachment URL that isn't on
  the CDN at all, as a forged interaction could carry.

`Case.expect()` says, for each defect, whether the bot must refuse it at once (before anything is
deferred, fetched or stored), must let the job fail after looking at the files (before anything
reaches Magic Hour), or may do either (edges that are a rounding error away from a limit), and
with which error codes.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hypothesis import strategies as st

from bot import bounds
from bot.config import GenerationMode
from bot.jobs.validation import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS

Slot = Literal["video", "audio"]
Delivery = Literal["followup", "channel", "dm"]
SLOTS: tuple[Slot, ...] = ("video", "audio")

# --------------------------------------------------------------------------- who may be mentioned


@dataclass(frozen=True)
class Targets:
    """The ids a generated text may try to mention."""

    owner: int  # the member running /lipsync: the only one any message may ping
    others: tuple[int, ...]  # other members
    roles: tuple[int, ...]  # roles, one of them mentionable by anyone
    guild: int  # the @everyone role's id
    channel: int


FAKE_SNOWFLAKE = 175928847299117063

# --------------------------------------------------------------------------- member text


def tricky_text(targets: Targets, *, max_size: int) -> st.SearchStrategy[str]:
    """Text a member might type to make the bot ping, format or garble something: 1..max_size code points."""
    mentions = st.sampled_from(
        [
            f"<@{targets.owner}>",
            *(f"<@{i}>" for i in targets.others),
            *(f"<@!{i}>" for i in targets.others),
            *(f"<@&{i}>" for i in targets.roles),
            f"<@&{targets.guild}>",
            "@everyone",
            "@here",
            "@\u200beveryone",
            f"<@{FAKE_SNOWFLAKE}>",
            f"<#{targets.channel}>",
            "</lipsync:1>",
            "<t:0:R>",
        ]
    )
    markdown = st.sampled_from(
        ["**", "__", "*", "_", "`", "```", "||", "~~", "> ", "# ", "-# ", "[x](https://evil.example)", "\\", "ˋ"]
    )
    control = st.sampled_from(
        ["\x00", "\x07", "\x1b[31m", "\r", "\n", "\t", "\x7f", "\x85", "\u202e", "\u200b", "\u2028", "\ufeff"]
    )
    unusual = st.sampled_from(["𝔘", "é", "e\u0301", "😀", "👨\u200d👩\u200d👧", "漢字", "ｍｐ４", "İ", "\U0010fffd"])
    pieces = st.lists(
        st.one_of(mentions, markdown, control, unusual, st.text(max_size=8)), min_size=1, max_size=12
    ).map("".join)
    exact = st.one_of(
        st.text(min_size=max_size, max_size=max_size),
        st.just("𝔘" * max_size),
        st.just((f"<@{targets.others[0]}> @everyone " * max_size)[:max_size]),
    )
    return st.one_of(pieces, exact).map(lambda text: text[:max_size] or "x")


# --------------------------------------------------------------------------- YouTube links

ID_ALPHABET = string.ascii_letters + string.digits + "_-"
CANONICAL_PREFIX = "https://www.youtube.com/watch?v="

# (text, allowed) for each part; "allowed" per the docstring of bot.jobs.youtube.canonical_youtube_url.
_SCHEMES = {True: ["https", "HTTPS", "Https"], False: ["http", "ftp", "javascript", "", "https ", "hxxps"]}
_SEPARATORS = {True: ["://"], False: [":/", ":", ":\\\\", ":///", "//"]}
_USERINFO = {True: [""], False: ["user@", "youtube.com@", "@", "user:pass@"]}
_PORTS = {True: [""], False: [":443", ":", ":8080"]}
_WATCH_HOSTS = ["www.youtube.com", "youtube.com", "m.youtube.com", "music.youtube.com", "WWW.YouTube.COM"]
_SHORT_HOSTS = ["youtu.be", "YOUTU.BE"]
_BAD_HOSTS = [
    "evil.example",
    "youtube.com.evil.example",
    "www.youtube.com.",
    "youtu.be.",
    "evilyoutube.com",
    "youtube.co",
    "ｙoutube.com",
    "youtube。com",
    "xn--ytube-3ta.com",
    "127.0.0.1",
    "[::1]",
    "youtube.com\\@evil.example",
    "www.youtube.com%2eevil.example",
]
_FRAGMENTS = {True: ["", "#t=30", "#", "#&v=AAAAAAAAAAA"], False: ["#é", "#a b"]}
_LEADING = {True: ["", " ", "\n", "\t", "\u00a0"], False: ["\u200b"]}
_TRAILING = {True: ["", " ", "\n", "\u3000"], False: ["\u200b"]}
_STRAY = [" ", "\\", "\t", "é", "\u200b", "\x00", "\x7f", "\n"]
_PARTS = ("scheme", "separator", "userinfo", "host", "port", "path", "fragment", "leading", "trailing", "stray")


def _watch_paths(vid: str) -> dict[bool, list[str]]:
    return {
        True: [
            f"/watch?v={vid}",
            f"/watch?feature=share&v={vid}",
            f"/watch?v={vid}&t=42s",
            f"/watch?v={vid}&list=PL0123",
            f"/shorts/{vid}",
            f"/embed/{vid}",
            f"/live/{vid}",
            f"/shorts/{vid}?feature=share",
            f"/embed/{vid}?start=10",
        ],
        False: [
            f"/watch?v={vid}&v={vid}",
            f"/watch?v={vid[:10]}",
            f"/watch?v={vid}A",
            f"/watch/?v={vid}",
            f"/watch?v={vid}/",
            f"/watch?v={vid}?v={vid}",
            f"/shorts/{vid}/",
            f"/shorts/{vid}/extra",
            f"/playlist?list=PL{vid}",
            f"/channel/UC{vid}",
            "/watch",
            "/watch?v=",
            f"/{vid}",
            f"?v={vid}",
            f"/WATCH?v={vid}",
            f"/watch?V={vid}",
            f"/watch?v={vid[:10]}!",
            f"/watch?v=%41{vid[:9]}",
            f"/attribution_link?u=/watch%3Fv%3D{vid}",
            f"//watch?v={vid}",
            f"/./watch?v={vid}",
            "",
            "/",
        ],
    }


def _short_paths(vid: str) -> dict[bool, list[str]]:
    return {
        True: [f"/{vid}", f"/{vid}?si=Xyz_12-ab", f"/{vid}?t=7&si=x"],
        False: [f"/{vid}/", "/", "", f"/watch?v={vid}", f"/{vid[:10]}", f"/{vid}/x", f"/shorts/{vid}", f"/{vid}A"],
    }


@dataclass(frozen=True)
class Link:
    """A generated `youtube_url` and the video id the bot must send on (None: it must refuse)."""

    url: str
    video_id: str | None
    spoiled: frozenset[str] = frozenset()  # the parts that were spoiled ("any text" for free text)

    @property
    def canonical(self) -> str | None:
        """The only URL that may reach Magic Hour for this link."""
        return CANONICAL_PREFIX + self.video_id if self.video_id is not None else None


@st.composite
def youtube_links(draw: st.DrawFn, targets: Targets, *, honest: bool) -> Link:
    """A link built from parts: an honest one spoils none, another one or two; or it is any text at all."""
    if not honest and draw(st.integers(0, 9)) == 0:
        return Link(draw(tricky_text(targets, max_size=300)), None, frozenset({"any text"}))
    vid = draw(st.text(ID_ALPHABET, min_size=11, max_size=11))
    spoiled = (
        set()
        if honest
        else draw(st.sets(st.sampled_from(_PARTS), min_size=1, max_size=draw(st.sampled_from([1, 1, 2]))))
    )

    def part(name: str, choices: Mapping[bool, list[str]]) -> str:
        return draw(st.sampled_from(choices[name not in spoiled]))

    short = draw(st.booleans())
    hosts = _SHORT_HOSTS if short else _WATCH_HOSTS
    host = draw(st.sampled_from(_BAD_HOSTS if "host" in spoiled else hosts))
    path = part("path", _short_paths(vid) if short else _watch_paths(vid))
    tail = path + part("fragment", _FRAGMENTS)
    if "stray" in spoiled and tail:
        # Strictly inside the tail, so trailing whitespace can't be stripped off with it.
        at = draw(st.integers(0, len(tail) - 1))
        tail = tail[:at] + draw(st.sampled_from(_STRAY)) + tail[at:]
    elif "stray" in spoiled:
        tail = draw(st.sampled_from(_STRAY)) + "/"
    url = (
        part("leading", _LEADING)
        + part("scheme", _SCHEMES)
        + part("separator", _SEPARATORS)
        + part("userinfo", _USERINFO)
        + host
        + part("port", _PORTS)
        + tail
        + part("trailing", _TRAILING)
    )
    return Link(url, None if spoiled else vid, frozenset(spoiled))


# --------------------------------------------------------------------------- attachments

# What the bytes are. The media files come from the `media_dir` fixture; the rest are made here.
Content = Literal["video", "silent", "mp3", "wav", "text", "png", "junk", "empty"]
MEDIA_FILES: dict[str, str] = {
    "video": "face.mp4",
    "silent": "silent.mp4",
    "mp3": "voice.mp3",
    "wav": "voice.wav",
    "text": "notes.txt",
}
MADE_BYTES: dict[str, bytes] = {
    "png": b"\x89PNG\r\n\x1a\n" + bytes(200),
    "junk": bytes(64) + bytes(range(256)),
    "empty": b"",
}
CONTENTS: list[Content] = ["video", "silent", "mp3", "wav", "text", "png", "junk", "empty"]
# The extensions each kind of bytes may honestly carry (only those the slots accept matter).
HONEST_EXTENSIONS: dict[str, frozenset[str]] = {
    "video": frozenset({"mp4", "m4v", "mov", "m4a"}),
    "silent": frozenset({"mp4", "m4v", "mov", "m4a"}),
    "mp3": frozenset({"mp3"}),
    "wav": frozenset({"wav"}),
}
# What each slot can use: a face video for `video` (sound or not), a voice for `audio`.
SUITS: dict[Slot, frozenset[str]] = {"video": frozenset({"video", "silent"}), "audio": frozenset({"mp3", "wav"})}

EXTENSIONS = [
    "mp4", "MP4", "Mp4", "mov", "m4v", "webm", "mp3", "MP3", "wav", "m4a", "ogg", "opus", "flac", "aac",
    "txt", "png", "exe", "", "mp4 ", "mp4\u200b", "mp4\x00", "ｍｐ４", "mp4.", "wav\n",
]  # fmt: skip
# Decorations before the member's base name; none changes which extension the name ends with.
PREFIXES = ["", "../../", "/etc/", "C:\\fakepath\\", "clip.txt.", "face.mp4.", "x/"]

# Content types an upload may claim, by family; None means Discord sent no content type.
CONTENT_TYPES: dict[str, list[str | None]] = {
    "unknown": [None, "", ";", "application/octet-stream", "APPLICATION/OCTET-STREAM", "application/octet-stream; x=1"],
    "video": ["video/mp4", "VIDEO/MP4", "video/quicktime", 'video/mp4; codecs="avc1.42E01E"', " video/mp4"],
    "av": ["video/webm", "video/ogg", "VIDEO/WEBM; codecs=opus"],  # containers of either
    "app_ogg": ["application/ogg"],
    "audio": ["audio/mpeg", "audio/wav", "AUDIO/MPEG", "audio/x-wav; rate=44100", " audio/mpeg"],
    "image": ["image/png", "IMAGE/PNG"],
    "text": ["text/plain", "text/html; charset=utf-8", "text/@everyone"],
    "other": ["application/x-msdownload", "multipart/form-data", "x/y", "video", "audio"],
}
ACCEPTED_TYPES: dict[Slot, frozenset[str]] = {
    "video": frozenset({"unknown", "video", "av"}),
    "audio": frozenset({"unknown", "audio", "av", "app_ogg"}),
}
SLOT_EXTENSIONS: dict[Slot, frozenset[str]] = {"video": VIDEO_EXTENSIONS, "audio": AUDIO_EXTENSIONS}

# Attachment URLs a forged interaction could carry instead of the CDN's; `{url}` is the real one.
URL_LIES = [
    "https://evil.invalid/x.mp4",
    "http://user@{host}{path}",
    "http://localhost:{port}{path}",
    "http://2130706433:{port}{path}",
    "http://[::1]:{port}{path}",
    "ftp://{host}{path}",
    "file:///etc/passwd",
    "https://cdn.discordapp.com.evil.invalid{path}",
    "https://cdn.discordapp.com@evil.invalid{path}",
]


@dataclass(frozen=True)
class Upload:
    """One generated attachment: what it is, what its name and upload claim, where it is fetched from."""

    slot: Slot
    content: Content
    extension: str
    filename: str
    content_type: str | None
    type_family: str
    url_lie: str | None = None

    def defects(self) -> list[Defect]:
        """What is wrong with this attachment for its slot, and when the bot must notice."""
        found: list[Defect] = []
        slot = self.slot
        other = "audio" if slot == "video" else "video"
        if self.extension.lower() not in SLOT_EXTENSIONS[slot]:
            found.append(Defect("now", {f"{slot}_is_{other}", f"bad_{slot}_type"}))
        if self.type_family not in ACCEPTED_TYPES[slot]:
            found.append(Defect("now", {f"{slot}_is_{other}", f"{slot}_content_type"}))
        if self.content == "empty":
            found.append(Defect("now", {"empty_file"}))
        if self.url_lie is not None:
            found.append(Defect("later", {"fetch_refused"}))
        honest = self.extension.lower() in HONEST_EXTENSIONS.get(self.content, frozenset())
        if not honest or self.content not in SUITS[slot]:
            found.append(Defect("later", MEDIA_CODES))
        return found


# What the bot may say about files that aren't what their slot needs, once it has them.
MEDIA_CODES = frozenset(
    {
        "name_mismatch",
        "not_media",
        "not_media_video",
        "not_media_audio",
        "still_image",
        "still_image_video",
        "still_image_audio",
        "no_duration",
        "not_a_video",
        "no_sound",
        "audio_has_video",
        "unsupported_format",
        "unsupported_format_video",
        "unsupported_format_audio",
        "unsupported_codec",
        "unsupported_codec_video",
        "unsupported_codec_audio",
    }
)


# Discord takes file names of up to 1024 characters: bases of up to 1000, the rest for prefix and extension.
long_names = st.builds(
    lambda piece, size: (piece * size)[:size], st.sampled_from(["a", "`", "𝔘", "<@&1>"]), st.integers(200, 1000)
)


def _base_name(text: str) -> str:
    # No "." or "/" in the base: the name's extension is exactly the one generated.
    base = text.replace(".", "").replace("/", "")
    return base or "x"


Lie = Literal["bytes", "name", "type", "url", "any"]
LIES: tuple[Lie, ...] = ("bytes", "name", "type", "url")


@st.composite
def uploads(draw: st.DrawFn, slot: Slot, targets: Targets, *, lie: Lie | None) -> Upload:
    """An attachment for `slot`: honest (`lie` None), or lying about one thing, or about anything.

    "bytes": any content under a name and type the slot accepts (the bot can only tell once it has
    fetched them); "name": any extension; "type": any content type; "url": a URL off the CDN.
    """
    content: Content = draw(st.sampled_from(sorted(SUITS[slot])))
    extensions = sorted(HONEST_EXTENSIONS[content] & SLOT_EXTENSIONS[slot])
    families = sorted(ACCEPTED_TYPES[slot])
    if lie in ("bytes", "any"):
        content = draw(st.sampled_from(CONTENTS))
        extensions = sorted(SLOT_EXTENSIONS[slot])
    if lie in ("name", "any"):
        extensions = EXTENSIONS
    if lie in ("type", "any"):
        families = sorted(CONTENT_TYPES)
    extension = draw(st.sampled_from(extensions))
    if draw(st.booleans()):
        extension = extension.upper()
    family = draw(st.sampled_from(families))
    content_type = draw(st.sampled_from(CONTENT_TYPES[family]))
    base = _base_name(draw(st.one_of(tricky_text(targets, max_size=100), long_names)))
    filename = draw(st.sampled_from(PREFIXES)) + base + (f".{extension}" if extension else "")
    url_lie = draw(st.sampled_from(URL_LIES)) if lie == "url" or (lie == "any" and draw(st.booleans())) else None
    return Upload(slot, content, extension, filename, content_type, family, url_lie)


# --------------------------------------------------------------------------- windows

# How long the test media are: the video's length decides whether `start` is past its end.
VIDEO_SECONDS = 2.0
VOICE_SECONDS = 1.5  # and the voice's: the output's length, so a longer part is announced, not rendered short
CUT = 0.1  # how much longer than its files a part may be before the bot announces it
# A window this close to a limit may go either way: the bot need not agree with the test's rounding.
EDGE = 0.1
CLIP_LIMIT = 60.0  # the default `max_clip_seconds`
CLIP_EDGE = 1e-5
MIN_CLIP = 0.1  # Magic Hour renders nothing shorter
MAX_NUMBER = bounds.MAX_SOURCE_SECONDS  # the bound `/lipsync` declares on start and end: Discord enforces it
START_EDGES = [0.0, -0.0, 5e-324, 1e-9, 0.05, 0.1, 0.5, 1.0, 1.5, 1.9, 1.99, 2.0, 2.01, 2.1, 3.0, 59.9, 60.0,
               1e4, MAX_NUMBER - 60.0, MAX_NUMBER - 0.1, MAX_NUMBER]  # fmt: skip
END_DELTAS = [-1.0, -5e-324, 0.0, 5e-324, 1e-9, 0.05, 0.0999, 0.1, 0.5, 1.0, 1.5, 2.0, 59.999999, 60.0,
              60.0 + 1e-7, 60.000001, 60.00001, 60.001, 61.0, 1e9]  # fmt: skip
HONEST_LENGTHS = [0.1, 0.5, 1.0, 1.5, 2.0, 59.999999, 60.0]
END_EDGES = [0.0, 5e-324, 0.05, 0.0999, 0.1, 1.0, 2.0, 60.0, 60.1, MAX_NUMBER - 0.05, MAX_NUMBER]
MAX_FPS_EDGES = [1.0, 1.0000001, 5.0, 23.976, 29.97, 30.0, 30.000001, 59.999, 60.0]

numbers = st.floats(0.0, MAX_NUMBER, allow_nan=False, allow_infinity=False)


@st.composite
def windows(draw: st.DrawFn, *, honest: bool, link: bool) -> tuple[float | None, float | None]:
    """(start, end), each None for "not given"; within what Discord lets a member send.

    An honest window starts inside the 2 s test video (anywhere, for a link) and is 0.1 to 60 s
    long; any other may be anything Discord lets through.
    """
    if honest:
        top = MAX_NUMBER - CLIP_LIMIT if link else VIDEO_SECONDS - 2 * EDGE
        start = draw(st.one_of(st.none(), st.sampled_from([e for e in START_EDGES if e <= top]), st.floats(0.0, top)))
        if not link and draw(st.booleans()):
            return start, None
        return start, (start or 0.0) + draw(st.one_of(st.sampled_from(HONEST_LENGTHS), st.floats(0.1, CLIP_LIMIT)))
    start = draw(st.one_of(st.none(), st.sampled_from(START_EDGES), numbers))
    kind = draw(st.sampled_from(["none", "delta", "delta", "edge", "any"]))
    end: float | None
    if kind == "none":
        end = None
    elif kind == "delta":
        end = min(MAX_NUMBER, max(0.0, (start or 0.0) + draw(st.sampled_from(END_DELTAS))))
    elif kind == "edge":
        end = draw(st.sampled_from(END_EDGES))
    else:
        end = draw(numbers)
    return start, end


# --------------------------------------------------------------------------- requests and what they must do


@dataclass(frozen=True)
class Defect:
    """Something wrong with a request: when the bot must notice it, and the codes it may answer with.

    `when`: "now" (refused before anything is deferred or fetched), "later" (the job fails after
    looking at the files, before Magic Hour), or "maybe-now"/"maybe-later" for edges where either
    answer, or none, is right.
    """

    when: Literal["now", "later", "maybe-now", "maybe-later"]
    codes: frozenset[str] | set[str]


@dataclass(frozen=True)
class Expectation:
    """The outcomes a case allows."""

    must_refuse: bool
    refuse_codes: frozenset[str]
    must_fail: bool
    fail_codes: frozenset[str]

    @property
    def valid(self) -> bool:
        """Whether the request may reach Magic Hour at all."""
        return not self.must_refuse and not self.must_fail


@dataclass(frozen=True)
class Case:
    """One generated `/lipsync` request."""

    audio: Upload
    video: Upload | None = None
    link: Link | None = None
    start: float | None = None
    end: float | None = None
    mode: str | None = None
    max_fps: float | None = None
    name: str | None = None
    # Not part of the request: where a finished video goes. "followup" while the interaction's token
    # lives; "channel" when the render outlives it (a new message that mentions the member); "dm"
    # when, on top of that, the bot may not post in the channel.
    delivery: Delivery = "followup"

    def options(self) -> dict[str, Any]:
        """The scalar options as passed to the slash command (attachments are added by the test)."""
        values = {
            "youtube_url": self.link.url if self.link is not None else None,
            "start": self.start,
            "end": self.end,
            "mode": self.mode,
            "max_fps": self.max_fps,
            "name": self.name,
        }
        return {key: value for key, value in values.items() if value is not None}

    def defects(self) -> list[Defect]:
        """Everything wrong with the request."""
        found: list[Defect] = []
        if self.video is not None and self.link is not None:
            found.append(Defect("now", {"video_and_youtube"}))
        if self.video is None and self.link is None:
            found.append(Defect("now", {"no_video"}))
        if self.link is not None and self.link.video_id is None:
            found.append(Defect("now", {"youtube_host", "youtube_shape"}))
        for upload in (self.video, self.audio):
            if upload is not None:
                found.extend(upload.defects())
        found.extend(self._window_defects())
        return found

    def _window_defects(self) -> list[Defect]:
        start = self.start or 0.0
        if self.end is None:
            return [Defect("now", {"youtube_needs_end"})] if self.link is not None else self._start_defects(start)
        if not self.end > start:
            return [Defect("now", {"end_before_start"})]
        if self.end < 0.1:
            return [Defect("now", {"bad_end"})]
        length = self.end - start
        if length < MIN_CLIP - CLIP_EDGE:
            return [Defect("now", {"clip_too_short"})]
        if length < MIN_CLIP + CLIP_EDGE:
            return [Defect("maybe-now", {"clip_too_short"}), *self._start_defects(start)]
        if length > CLIP_LIMIT + CLIP_EDGE:
            return [Defect("now", {"clip_too_long"})]
        if length > CLIP_LIMIT:
            return [Defect("maybe-now", {"clip_too_long"}), *self._start_defects(start)]
        return self._start_defects(start)

    def _cut_defects(self, start: float) -> list[Defect]:
        """A part past the video's end or the voice's: announced after probing, never rendered short."""
        if self.end is None and self.video is None:
            return []
        asked = self.end if self.end is not None else start + VOICE_SECONDS
        fits = min(asked, start + VOICE_SECONDS) if self.end is not None else asked
        if self.video is not None:
            fits = min(fits, VIDEO_SECONDS)
        cut = asked - fits
        codes = {"voice_past_video", "part_past_video", "part_past_voice", "clip_too_short"}
        if cut > CUT + EDGE:
            return [Defect("later", codes)]
        if cut > CUT - EDGE:
            return [Defect("maybe-later", codes)]
        return []

    def _start_defects(self, start: float) -> list[Defect]:
        # Only a video file has a known end; a YouTube video's length is Magic Hour's business.
        if self.video is None:
            return self._cut_defects(start)
        if start > VIDEO_SECONDS + EDGE:
            return [Defect("later", {"start_past_end"})]
        if start >= VIDEO_SECONDS - EDGE:
            # Within 0.1 s of the video's end, what is left of it is too short to render.
            return [Defect("maybe-later", {"start_past_end", "clip_too_short"}), *self._cut_defects(start)]
        return self._cut_defects(start)

    def expect(self) -> Expectation:
        """The outcomes this request allows."""
        defects = self.defects()
        codes: dict[str, frozenset[str]] = {"now": frozenset(), "later": frozenset()}
        certain = {"now": False, "later": False}
        for defect in defects:
            stage = defect.when.removeprefix("maybe-")
            codes[stage] |= frozenset(defect.codes)
            certain[stage] = certain[stage] or not defect.when.startswith("maybe-")
        return Expectation(certain["now"], codes["now"], certain["later"], codes["later"])


# The ways a request can be wrong in exactly one respect.
WAYS: dict[str, tuple[Slot, Lie] | None] = {
    "source": None,
    "link": None,
    "window": None,
    **{f"{slot}:{lie}": (slot, lie) for slot in SLOTS for lie in LIES},
}


@st.composite
def cases(draw: st.DrawFn, targets: Targets) -> Case:
    """A whole request: a clip (file, link, both or neither), a voice, a window, a mode, a cap, a name.

    Names, modes and caps are always drawn from everything allowed. The rest is honest in about
    three cases out of ten, wrong in exactly one way (each of the ways about equally often) in
    five, and may be wrong anywhere in two.
    """
    aim = draw(st.sampled_from(["honest"] * 3 + ["one"] * 5 + ["any"] * 2))
    wrong: set[str] = set()
    lies: dict[Slot, Lie] = {}
    if aim == "one":
        # Links get four shares: their grammar has the most parts to spoil.
        way = draw(st.sampled_from([*sorted(WAYS), "link", "link", "link"]))
        upload_lie = WAYS[way]
        if upload_lie is None:
            wrong.add(way)
        else:
            lies[upload_lie[0]] = upload_lie[1]
    elif aim == "any":
        wrong = {"source", "link", "window"}
        lies = {"video": "any", "audio": "any"}
    if "source" in wrong:
        source = draw(st.sampled_from(["both", "neither"] if aim == "one" else ["file", "link", "both", "neither"]))
    elif "video" in lies:
        source = "file"
    else:
        source = draw(st.sampled_from(["file", "file", "link"]))
    video = draw(uploads("video", targets, lie=lies.get("video"))) if source in ("file", "both") else None
    link = draw(youtube_links(targets, honest="link" not in wrong)) if source in ("link", "both") else None
    start, end = draw(windows(honest="window" not in wrong, link=video is None))
    return Case(
        audio=draw(uploads("audio", targets, lie=lies.get("audio"))),
        video=video,
        link=link,
        start=start,
        end=end,
        mode=draw(st.one_of(st.none(), st.sampled_from([m.value for m in GenerationMode]))),
        max_fps=draw(st.one_of(st.none(), st.sampled_from(MAX_FPS_EDGES), st.floats(1.0, 60.0))),
        name=draw(st.one_of(st.none(), tricky_text(targets, max_size=100))),
        delivery=draw(st.sampled_from(["followup", "followup", "channel", "dm"])),
    )
