"""Typed request and response bodies of the Magic Hour endpoints the bot uses.

Requests are strict (unknown fields are a bug on our side) and serialise without `None` fields.
Responses ignore fields they do not know, so an API that grows new fields does not break polling.
Signed URLs are kept out of `repr`, so logging a model never leaks one.

`Account`, `CreatedJob` and `VideoProject` carry `sandbox`: True when the response they came from
had the header `X-Magic-Hour-Sandbox: 1` (the local sandbox sends it on every response). The
client sets it from the header; a JSON body cannot, so a result is labelled "sandbox" only when
the server that produced it said so, never because of a URL or a field in a body.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from bot.config import GenerationMode

UploadType = Literal["video", "audio", "image"]
VideoSource = Literal["file", "youtube"]
Tier = Literal["free", "creator", "pro", "business"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> dict[str, Any]:
        """The JSON body to send: optional fields left unset are omitted, not sent as null."""
        return self.model_dump(mode="json", exclude_none=True)


SANDBOX_HEADER = "X-Magic-Hour-Sandbox"


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _SandboxAware(_Response):
    """A response model that remembers whether a sandbox produced it: set from the response's header, never from
    its body."""

    sandbox: bool = False

    @field_validator("sandbox", mode="before")
    @classmethod
    def _never_from_a_body(cls, value: object, info: ValidationInfo) -> object:
        # Only the response's header may say "sandbox"; a body claiming it is ignored.
        return False if info.mode == "json" else value


# --- Files ---------------------------------------------------------------------------------------


class UploadItem(_Request):
    """One file to request an upload URL for. `extension` is normalised to lowercase, no dot."""

    type: UploadType
    extension: str = Field(min_length=1)

    @field_validator("extension", mode="before")
    @classmethod
    def _normalise_extension(cls, value: object) -> object:
        # The API wants `mp4`, not `.MP4`; accepting either saves every caller the same fix-up.
        if isinstance(value, str):
            return value.strip().lstrip(".").lower()
        return value


class _UploadUrlsRequest(_Request):
    items: list[UploadItem] = Field(min_length=1)


class UploadUrl(_Response):
    """Where to PUT one file (`upload_url`, presigned) and what to call it afterwards (`file_path`)."""

    upload_url: str = Field(repr=False)
    expires_at: dt.datetime | None = None
    file_path: str


class _UploadUrlsResponse(_Response):
    items: list[UploadUrl]


# --- Lip sync ------------------------------------------------------------------------------------


class LipSyncAssets(_Request):
    """The inputs: an audio path and a video that is either a file path or a YouTube URL.

    A path is an uploaded `file_path` (`api-assets/...`) or a direct URL the API can read.
    """

    audio_file_path: str = Field(min_length=1)
    video_source: VideoSource
    video_file_path: str | None = None
    youtube_url: str | None = None

    @model_validator(mode="after")
    def _video_matches_source(self) -> Self:
        if self.video_source == "file" and not self.video_file_path:
            raise ValueError("video_file_path is required when video_source is 'file'")
        if self.video_source == "youtube" and not self.youtube_url:
            raise ValueError("youtube_url is required when video_source is 'youtube'")
        return self


class LipSyncStyle(_Request):
    """Rendering options; the API defaults `generation_mode` to `lite`."""

    generation_mode: GenerationMode | None = None


class LipSyncRequest(_Request):
    """The body of `POST /v1/lip-sync`."""

    name: str | None = None
    start_seconds: float = Field(ge=0)
    end_seconds: float = Field(ge=0.1)
    max_fps_limit: float | None = Field(default=None, ge=1)
    assets: LipSyncAssets
    style: LipSyncStyle | None = None

    @model_validator(mode="after")
    def _window_is_ordered(self) -> Self:
        if self.end_seconds <= self.start_seconds:
            raise ValueError("end_seconds must be greater than start_seconds")
        return self

    @classmethod
    def from_paths(
        cls,
        *,
        audio_file_path: str,
        video_file_path: str | None = None,
        youtube_url: str | None = None,
        start_seconds: float,
        end_seconds: float,
        mode: GenerationMode | None = None,
        max_fps_limit: float | None = None,
        name: str | None = None,
    ) -> LipSyncRequest:
        """Build a request from flat arguments; give exactly one of `video_file_path` and `youtube_url`."""
        if (video_file_path is None) == (youtube_url is None):
            raise ValueError("give exactly one of video_file_path and youtube_url")
        assets = LipSyncAssets(
            audio_file_path=audio_file_path,
            video_source="file" if video_file_path is not None else "youtube",
            video_file_path=video_file_path,
            youtube_url=youtube_url,
        )
        return cls(
            name=name,
            start_seconds=start_seconds,
            end_seconds=end_seconds,
            max_fps_limit=max_fps_limit,
            assets=assets,
            style=LipSyncStyle(generation_mode=mode) if mode is not None else None,
        )


class CreatedJob(_SandboxAware):
    """What `POST /v1/lip-sync` returns: the project id and the credits charged (an estimate)."""

    id: str = Field(min_length=1)
    credits_charged: int | None = None  # missing is an odd answer, never zero


# --- Video projects ------------------------------------------------------------------------------


class ProjectStatus(StrEnum):
    """A video project's status, as the API's enum names it."""

    DRAFT = "draft"
    QUEUED = "queued"
    RENDERING = "rendering"
    COMPLETE = "complete"
    ERROR = "error"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        """True once the project will not change again."""
        return self in _TERMINAL


_TERMINAL = frozenset({ProjectStatus.COMPLETE, ProjectStatus.ERROR, ProjectStatus.CANCELED})


class ProjectError(_Response):
    """Why a project failed, e.g. code `no_source_face`."""

    code: str
    message: str = ""


class Download(_Response):
    """A signed result URL; it expires (24 h on the real API), then GET the project again."""

    url: str = Field(repr=False)
    expires_at: dt.datetime | None = None


class VideoProject(_SandboxAware):
    """A video project from `GET /v1/video-projects/{id}`.

    Only `id` and `status` are required, so a response missing some informational field still
    lets the poller see the status.
    """

    id: str
    status: ProjectStatus
    name: str | None = None
    type: str | None = None
    created_at: dt.datetime | None = None
    width: int | None = None
    height: int | None = None
    enabled: bool = True
    start_seconds: float | None = None
    end_seconds: float | None = None
    fps: float | None = None
    credits_charged: int | None = None  # missing is an odd answer, never zero
    error: ProjectError | None = None
    downloads: list[Download] = Field(default_factory=list)

    @property
    def is_terminal(self) -> bool:
        """True once the project is complete, failed or canceled."""
        return self.status.is_terminal

    @property
    def is_settled(self) -> bool:
        """True once the project ended *and* says what it charged: only such a read can end a job."""
        return self.is_terminal and self.credits_charged is not None

    @property
    def is_complete(self) -> bool:
        """True when the render succeeded (its downloads should be present)."""
        return self.status is ProjectStatus.COMPLETE

    @property
    def is_failed(self) -> bool:
        """True when the render ended without a result (error or canceled)."""
        return self.status in (ProjectStatus.ERROR, ProjectStatus.CANCELED)

    @property
    def download_url(self) -> str | None:
        """The first result URL, if any (a lip-sync project has one)."""
        return self.downloads[0].url if self.downloads else None


# --- Account -------------------------------------------------------------------------------------


class Subscription(_Response):
    """The account's plan; fields the bot does not use are ignored."""

    name: str | None = None
    status: str | None = None
    billing_interval: str | None = None
    cancel_at_period_end: bool | None = None
    current_period_end: dt.datetime | None = None


class Account(_SandboxAware):
    """`GET /v1/account`: whose key this is and how many credits it can spend."""

    id: str
    email: str | None = None
    credits: int
    tier: Tier
    subscription: Subscription | None = None
