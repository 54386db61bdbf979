"""YouTube links: a video id from a few exact forms, or a refusal that says which kind of wrong."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.errors import InvalidInput
from bot.jobs.youtube import SHORT_HOST, WATCH_HOSTS, canonical_youtube_url
from bot.words import has

ID = "dQw4w9WgXcQ"
CANONICAL = f"https://www.youtube.com/watch?v={ID}"
CANONICAL_SHAPE = re.compile(r"https://www\.youtube\.com/watch\?v=[A-Za-z0-9_-]{11}")

# Deterministic and never timed: a property test must not pass or fail on the machine's speed.
PROPERTY = settings(max_examples=250, deadline=None, derandomize=True, database=None)


def refusal(url: str) -> str:
    with pytest.raises(InvalidInput) as refused:
        canonical_youtube_url(url)
    return refused.value.code


# --- examples ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"https://www.youtube.com/watch?v={ID}",
        f"https://youtube.com/watch?v={ID}",
        f"https://m.youtube.com/watch?v={ID}",
        f"https://music.youtube.com/watch?v={ID}&list=RDAMVM{ID}",
        f"https://www.youtube.com/watch?feature=share&v={ID}&t=42s",
        f"https://www.youtube.com/watch?v={ID}#t=30",
        f"https://www.youtube.com/shorts/{ID}",
        f"https://youtube.com/shorts/{ID}?feature=share",
        f"https://www.youtube.com/embed/{ID}?start=10",
        f"https://www.youtube.com/live/{ID}?si=abcDEF123",
        f"https://youtu.be/{ID}",
        f"https://youtu.be/{ID}?si=Xyz_12-ab&t=7",
        f"HTTPS://WWW.YouTube.COM/watch?v={ID}",
        f"  https://youtu.be/{ID}\n",
    ],
)
def test_accepted_forms_become_one_canonical_url(url: str) -> None:
    """Every accepted form gives https://www.youtube.com/watch?v=<id> and nothing else."""
    assert canonical_youtube_url(url) == CANONICAL


@pytest.mark.parametrize(
    "url",
    [
        f"https://youtube.com@evil.example/watch?v={ID}",
        f"https://youtube.com\\@evil.example/watch?v={ID}",
        f"https://evil\\@youtube.com/watch?v={ID}",
        f"evil\\@youtube.com/watch?v={ID}",
        f"https://user:pass@www.youtube.com/watch?v={ID}",
        f"https://@youtube.com/watch?v={ID}",
        f"http://www.youtube.com/watch?v={ID}",
        f"http://youtu.be/{ID}",
        f"ftp://youtu.be/{ID}",
        f"javascript://youtu.be/{ID}",
        f"//youtu.be/{ID}",
        f"youtu.be/{ID}",
        f"www.youtube.com/watch?v={ID}",
        f"https:/youtu.be/{ID}",
        f"https:\\\\youtu.be\\{ID}",
        f"https://www.youtube.com:443/watch?v={ID}",
        f"https://youtu.be:8080/{ID}",
        f"https://youtube.com./watch?v={ID}",
        f"https://www.youtube.com.evil.example/watch?v={ID}",
        f"https://evilyoutube.com/watch?v={ID}",
        f"https://evil.example/youtube.com/watch?v={ID}",
        f"https://www.youtu.be/{ID}",
        f"https://www.youtube-nocookie.com/embed/{ID}",
        f"https://%77ww.youtube.com/watch?v={ID}",
        f"https://www.yоutube.com/watch?v={ID}",  # Cyrillic о
        f"https://www .youtube.com/watch?v={ID}",
        f"https://[::1]/watch?v={ID}",
        f"https://127.0.0.1/watch?v={ID}",
        "https://",
        "",
        "   ",
        ID,
    ],
)
def test_not_youtube_at_all(url: str) -> None:
    """Other schemes, hosts, user info, ports and tricks in the authority: youtube_host."""
    assert refusal(url) == "youtube_host"


@pytest.mark.parametrize(
    "url",
    [
        "https://www.youtube.com/",
        "https://www.youtube.com/watch",
        "https://www.youtube.com/watch?v=",
        "https://www.youtube.com/watch?v=short",
        f"https://www.youtube.com/watch?v={ID}X",
        f"https://www.youtube.com/watch?v={ID[:-1]}!",
        f"https://www.youtube.com/watch?v={ID}&v=aaaaaaaaaaa",
        f"https://www.youtube.com/watch?V={ID}",
        f"https://www.youtube.com/watch?v%3D{ID}",
        f"https://www.youtube.com/watch?v={ID[:5]}%41{ID[6:]}",
        f"https://www.youtube.com/watch#?v={ID}",
        f"https://www.youtube.com/watch/?v={ID}",
        f"https://www.youtube.com//watch?v={ID}",
        f"https://www.youtube.com/Watch?v={ID}",
        f"https://www.youtube.com/watch?v={ID} &t=1",
        f"https://www.youtube.com/watch?v={ID}&x=a b",
        f"https://www.youtube.com/watch?v={ID}&x=\\",
        f"https://www.youtube.com/watch?v={ID}&x=é",
        f"https://www.youtube.com/watch?v={ID}\t&t=1",
        f"https://www.youtube.com/shorts/{ID}/",
        f"https://www.youtube.com/shorts/{ID}/extra",
        f"https://www.youtube.com/embed/{ID}/..",
        f"https://www.youtube.com/shorts/../watch?v={ID}",
        f"https://www.youtube.com/v/{ID}",
        f"https://www.youtube.com/{ID}",
        f"https://youtu.be/watch?v={ID}",
        f"https://youtu.be/shorts/{ID}",
        f"https://youtu.be/{ID}/",
        f"https://youtu.be/{ID}/extra",
        f"https://youtu.be/{ID}\\@evil.example",
        "https://youtu.be/",
        "https://www.youtube.com/playlist?list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG",
        "https://www.youtube.com/@SomeChannel",
        "https://www.youtube.com/channel/UC38IQsAvIsxxjztdMZQtwHA",
        "https://www.youtube.com/results?search_query=lip+sync",
        f"https://www.youtube.com/watch?v={ID}&pad=" + "a" * 3000,
    ],
)
def test_youtube_but_not_a_video_link(url: str) -> None:
    """A YouTube host without one of the video forms, or with junk after the host: youtube_shape."""
    assert refusal(url) == "youtube_shape"


def test_refusal_codes_have_templates_naming_the_forms() -> None:
    """Both codes have a message, and the messages name the links that work."""
    assert has("youtube_host") and has("youtube_shape")
    for code in ("youtube_host", "youtube_shape"):
        text = InvalidInput(code).user_message
        assert "youtu.be/" in text and "watch?v=" in text and "https://" in text
    assert "shorts/" in InvalidInput("youtube_shape").user_message


# --- properties ----------------------------------------------------------------------------------

ids = st.from_regex(r"[A-Za-z0-9_-]{11}", fullmatch=True)
watch_hosts = st.sampled_from(sorted(WATCH_HOSTS))
# Query keys and values a share link might carry: no separators, nothing the parser must refuse.
params = st.lists(
    st.tuples(
        st.from_regex(r"[a-uw-z_][a-z0-9_]{0,8}", fullmatch=True),
        st.from_regex(r"[A-Za-z0-9_.~%+-]{0,20}", fullmatch=True),
    ),
    max_size=4,
)
fragments = st.one_of(st.just(""), st.from_regex(r"#[A-Za-z0-9=&_-]{0,12}", fullmatch=True))


def _random_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if flip else c for c, flip in zip(text, flips, strict=True))


@st.composite
def valid_links(draw: st.DrawFn) -> tuple[str, str]:
    """(a link in one of the accepted forms, its id)."""
    video_id = draw(ids)
    extra = [f"{k}={v}" for k, v in draw(params)]
    form = draw(st.sampled_from(["watch", "shorts", "embed", "live", "short-host"]))
    if form == "watch":
        query = extra[:]
        query.insert(draw(st.integers(0, len(extra))), f"v={video_id}")
        rest = "/watch?" + "&".join(query)
        host = draw(watch_hosts)
    else:
        rest = f"/{video_id}" if form == "short-host" else f"/{form}/{video_id}"
        if extra:
            rest += "?" + "&".join(extra)
        host = SHORT_HOST if form == "short-host" else draw(watch_hosts)
    scheme = _random_case(draw, "https")
    return f"{scheme}://{_random_case(draw, host)}{rest}{draw(fragments)}", video_id


@PROPERTY
@given(valid_links())
def test_every_accepted_form_gives_the_canonical_url(link: tuple[str, str]) -> None:
    """Any host, form, extra parameters and fragment: the answer is built from the id alone."""
    url, video_id = link
    assert canonical_youtube_url(url) == f"https://www.youtube.com/watch?v={video_id}"


@PROPERTY
@given(
    valid_links(),
    st.sampled_from(
        [
            ("user@", ""),
            ("youtube.com@", ""),
            ("a:b@", ""),
            ("evil\\@", ""),
            ("", ":443"),
            ("", ":8080"),
            ("", "."),
            ("", ".evil.example"),
            ("", "@evil.example"),
            ("", "\\@evil.example"),
            ("", "%2eevil.example"),
            ("x", ""),
            ("", " "),
        ]
    ),
)
def test_anything_wrapped_around_the_host_is_not_youtube(link: tuple[str, str], around: tuple[str, str]) -> None:
    """User info, ports, suffixes and backslashes around a real YouTube host: youtube_host."""
    url, _ = link
    scheme, rest = url.split("://", 1)
    cut = min(i for i in (rest.find("/"), rest.find("?"), rest.find("#"), len(rest)) if i >= 0)
    before, after = around
    assert refusal(f"{scheme}://{before}{rest[:cut]}{after}{rest[cut:]}") == "youtube_host"


@PROPERTY
@given(valid_links(), st.sampled_from(["http", "ftp", "wss", "httpss", "http\\s", ""]))
def test_only_https_will_do(link: tuple[str, str], scheme: str) -> None:
    """Any other scheme, or none, is refused as not YouTube."""
    url, _ = link
    assert refusal(scheme + url[5:]) == "youtube_host"


@PROPERTY
@given(
    valid_links(),
    st.sampled_from(["/extra", "/", "/..", "/%2e%2e"]),
)
def test_extra_path_segments_are_not_a_video(link: tuple[str, str], extra: str) -> None:
    """A segment (or a slash) after the id or after /watch is refused as the wrong shape."""
    url, _ = link
    base, sep, rest = url.partition("?")
    if "#" in base:
        base, sep, rest = url.partition("#")
    assert refusal(base + extra + sep + rest) == "youtube_shape"


@PROPERTY
@given(valid_links(), st.data())
def test_junk_inside_the_rest_is_not_a_video(link: tuple[str, str], data: st.DataObject) -> None:
    """A space, tab, backslash or non-ASCII character anywhere after the host: youtube_shape."""
    url, _ = link
    start = url.index("/", len("https://"))
    at = data.draw(st.integers(start + 1, len(url) - 1))  # inside: outer whitespace is stripped
    junk = data.draw(st.sampled_from([" ", "\t", "\\", "\u00a0", "é", "\u2028", "\x00"]))
    assert refusal(url[:at] + junk + url[at:]) == "youtube_shape"


bad_ids = st.one_of(
    st.from_regex(r"[A-Za-z0-9_-]{0,10}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_-]{12,20}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_-]{5}[^A-Za-z0-9_\-#?&/][A-Za-z0-9_-]{5}", fullmatch=True),
)


@PROPERTY
@given(bad_ids)
def test_ids_must_be_eleven_safe_characters(bad_id: str) -> None:
    """Ids of any other length or with any other character are refused in every form."""
    for url in (
        f"https://www.youtube.com/watch?v={bad_id}",
        f"https://youtu.be/{bad_id}",
        f"https://www.youtube.com/shorts/{bad_id}",
    ):
        assert refusal(url) == "youtube_shape"


def _check_any_input(text: str) -> None:
    try:
        result = canonical_youtube_url(text)
    except InvalidInput as refused:
        assert refused.code in {"youtube_host", "youtube_shape"}
        return
    # Accepted: the answer is canonical, idempotent, its id was in the input, and a standard
    # parser (the stdlib's, and httpx's) agrees that the input goes to a YouTube host, with no
    # user info and no port.
    assert CANONICAL_SHAPE.fullmatch(result)
    assert canonical_youtube_url(result) == result
    assert result.rsplit("=", 1)[1] in text
    youtube_hosts = WATCH_HOSTS | {SHORT_HOST}
    stdlib = urlsplit(text.strip())
    assert stdlib.scheme.lower() == "https" and stdlib.port is None and stdlib.username is None
    assert stdlib.hostname in youtube_hosts
    parsed = httpx.URL(text.strip())
    assert parsed.scheme == "https" and parsed.port is None and parsed.userinfo == b""
    assert parsed.host in youtube_hosts


@PROPERTY
@given(st.text(max_size=80))
@example(f"https://youtube.com@evil.example/watch?v={ID}")
@example(f"https://youtu.be/{ID}")
def test_any_text_is_refused_or_canonical(text: str) -> None:
    """Arbitrary text never breaks the parser: a refusal with one of the two codes, or a canonical URL."""
    _check_any_input(text)


url_alphabet = st.sampled_from([*"abcvw0123456789_-./?#&=@:%\\ ", "youtube.com", "youtu.be", "www.", ID, "v="])


@PROPERTY
@given(st.lists(url_alphabet, max_size=12).map("".join))
@example(f"youtu.be/{ID}")
@example(f"www.youtube.com/watch?v={ID}&v=")
@example(f"youtube.com@youtu.be/{ID}")
def test_near_miss_urls_are_refused_or_canonical(tail: str) -> None:
    """Strings built from URL-ish pieces after https:// keep the same guarantees."""
    _check_any_input("https://" + tail)
