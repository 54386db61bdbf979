"""YouTube links, strictly: one video id out of a few known link shapes, or a refusal.

The bot never forwards what a member typed: `canonical_youtube_url` reads a video id from the
forms it lists and answers a URL built here. docs/design-notes.md, "Hostile input", says why.
"""

from __future__ import annotations

import re

from bot.errors import InvalidInput

WATCH_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com"})
SHORT_HOST = "youtu.be"
CANONICAL_PREFIX = "https://www.youtube.com/watch?v="
MAX_URL_LENGTH = 2048

_ID = r"[A-Za-z0-9_-]{11}"
_VIDEO_ID = re.compile(_ID, re.ASCII)
_HOST = re.compile(r"[A-Za-z0-9.-]+", re.ASCII)
# After the host: printable ASCII only (no space, no control character, no backslash).
_TAIL = re.compile(r"[\x21-\x5b\x5d-\x7e]*", re.ASCII)
_SHORT_PATH = re.compile(rf"/({_ID})", re.ASCII)
_WATCH_HOST_PATH = re.compile(rf"/(?:shorts|embed|live)/({_ID})", re.ASCII)


def canonical_youtube_url(url: str) -> str:
    """The video's canonical URL, `https://www.youtube.com/watch?v=<id>`, or `InvalidInput`.

    Accepted (scheme and host in any case; surrounding whitespace ignored):

    - `https://youtube.com/watch?v=<id>`, with other query parameters (dropped)
    - `https://youtube.com/shorts/<id>`, `/embed/<id>`, `/live/<id>`
    - each of those on `www.youtube.com`, `m.youtube.com` and `music.youtube.com` too
    - `https://youtu.be/<id>`

    where `<id>` is 11 characters of `A-Z a-z 0-9 _ -`. A query string (`?si=…`, `&t=…`) and a
    fragment are allowed and dropped on every form, as the Share button adds them.

    Refused with `InvalidInput`:

    - `youtube_host`: not `https://` followed directly by one of those hosts: another scheme or
      host, user info, a port, or anything but letters, digits, dots and hyphens before the path.
    - `youtube_shape`: one of those hosts, but not one of the forms: playlists, channels, extra or
      missing path segments, a trailing slash, a malformed or repeated id, whitespace, backslashes
      or non-ASCII characters anywhere in the rest.
    """
    text = url.strip()
    scheme, separator, rest = text.partition("://")
    if not separator or scheme.lower() != "https":
        raise InvalidInput("youtube_host")
    # The authority runs to the first "/", "?" or "#"; a backslash is not a delimiter here, so
    # `youtube.com\@evil.example` stays one (refused) authority whichever way a browser reads it.
    authority_end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    if not _HOST.fullmatch(authority):
        raise InvalidInput("youtube_host")
    host = authority.lower()
    if host not in WATCH_HOSTS and host != SHORT_HOST:
        raise InvalidInput("youtube_host")
    if len(text) > MAX_URL_LENGTH or not _TAIL.fullmatch(tail):
        raise InvalidInput("youtube_shape")
    video_id = _video_id(host, tail)
    if video_id is None:
        raise InvalidInput("youtube_shape")
    return CANONICAL_PREFIX + video_id


def _video_id(host: str, tail: str) -> str | None:
    before_fragment = tail.split("#", 1)[0]
    path, _, query = before_fragment.partition("?")
    if host == SHORT_HOST:
        match = _SHORT_PATH.fullmatch(path)
        return match.group(1) if match else None
    if path == "/watch":
        ids = [value for key, _, value in (part.partition("=") for part in query.split("&")) if key == "v"]
        if len(ids) == 1 and _VIDEO_ID.fullmatch(ids[0]):
            return ids[0]
        return None
    match = _WATCH_HOST_PATH.fullmatch(path)
    return match.group(1) if match else None
