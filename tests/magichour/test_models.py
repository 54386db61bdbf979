"""The request and response models: serialisation, validation and tolerance."""

from __future__ import annotations

import json

import pydantic
import pytest

from bot.config import GenerationMode
from bot.magichour import (
    Account,
    CreatedJob,
    LipSyncAssets,
    LipSyncRequest,
    LipSyncStyle,
    ProjectStatus,
    UploadItem,
    UploadUrl,
    VideoProject,
)

SIGNED = "https://storage.example/upload/x.mp4?expires=1&sig=deadbeef"


def test_request_serialises_without_none_fields() -> None:
    """Unset optional fields are left out of the body, not sent as null."""
    request = LipSyncRequest(
        start_seconds=0,
        end_seconds=2.5,
        assets=LipSyncAssets(
            audio_file_path="api-assets/a.mp3", video_source="file", video_file_path="api-assets/v.mp4"
        ),
    )
    assert request.to_json() == {
        "start_seconds": 0.0,
        "end_seconds": 2.5,
        "assets": {
            "audio_file_path": "api-assets/a.mp3",
            "video_source": "file",
            "video_file_path": "api-assets/v.mp4",
        },
    }


def test_from_paths_builds_a_full_request() -> None:
    """Flat arguments become the nested body, with the mode as its string value."""
    request = LipSyncRequest.from_paths(
        audio_file_path="a.mp3",
        youtube_url="https://youtu.be/abc",
        start_seconds=1,
        end_seconds=3,
        mode=GenerationMode.PRO,
        max_fps_limit=24,
        name="clip",
    )
    assert request.to_json() == {
        "name": "clip",
        "start_seconds": 1.0,
        "end_seconds": 3.0,
        "max_fps_limit": 24.0,
        "assets": {"audio_file_path": "a.mp3", "video_source": "youtube", "youtube_url": "https://youtu.be/abc"},
        "style": {"generation_mode": "pro"},
    }
    assert LipSyncStyle(generation_mode=GenerationMode.LITE).to_json() == {"generation_mode": "lite"}


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"start_seconds": 2, "end_seconds": 1}, "greater than start_seconds"),
        ({"start_seconds": -1, "end_seconds": 1}, "greater than or equal to 0"),
        ({"start_seconds": 0, "end_seconds": 1, "max_fps_limit": 0.5}, "greater than or equal to 1"),
    ],
)
def test_request_window_is_checked_locally(kwargs: dict[str, float], problem: str) -> None:
    """The OpenAPI's clip rules are enforced before anything is sent."""
    assets = LipSyncAssets(audio_file_path="a", video_source="file", video_file_path="v")
    with pytest.raises(pydantic.ValidationError, match=problem):
        LipSyncRequest.model_validate({"assets": assets, **kwargs})


def test_assets_need_the_video_their_source_names() -> None:
    """`file` needs `video_file_path`, `youtube` needs `youtube_url`; from_paths needs exactly one."""
    with pytest.raises(pydantic.ValidationError, match="video_file_path is required"):
        LipSyncAssets(audio_file_path="a", video_source="file")
    with pytest.raises(pydantic.ValidationError, match="youtube_url is required"):
        LipSyncAssets(audio_file_path="a", video_source="youtube")
    with pytest.raises(ValueError, match="exactly one"):
        LipSyncRequest.from_paths(audio_file_path="a", start_seconds=0, end_seconds=1)


def test_upload_item_extension_is_normalised() -> None:
    """`.MP4` becomes `mp4`, as the API wants it."""
    assert UploadItem(type="video", extension=".MP4").to_json() == {"type": "video", "extension": "mp4"}
    with pytest.raises(pydantic.ValidationError):
        UploadItem(type="gif", extension="gif")  # type: ignore[arg-type]


def test_video_project_tolerates_extra_and_missing_fields() -> None:
    """Unknown fields are ignored and informational ones may be missing; status is typed."""
    project = VideoProject.model_validate(
        {
            "id": "p1",
            "status": "complete",
            "total_frame_cost": 30,
            "download": {"url": SIGNED, "expires_at": "2026-01-01T00:00:00Z"},
            "something_new": [1, 2],
            "downloads": [{"url": SIGNED, "expires_at": "2026-01-01T00:00:00Z"}],
            "error": None,
        }
    )
    assert project.status is ProjectStatus.COMPLETE
    assert project.is_terminal and project.is_complete and not project.is_failed
    assert project.download_url == SIGNED


@pytest.mark.parametrize(
    ("status", "terminal", "failed"),
    [
        ("draft", False, False),
        ("queued", False, False),
        ("rendering", False, False),
        ("complete", True, False),
        ("error", True, True),
        ("canceled", True, True),
    ],
)
def test_status_helpers(status: str, terminal: bool, failed: bool) -> None:
    """Terminal means complete, error or canceled; failed means error or canceled."""
    project = VideoProject.model_validate({"id": "p", "status": status})
    assert project.is_terminal is terminal
    assert project.is_failed is failed
    assert project.download_url is None


def test_failed_project_carries_its_error() -> None:
    """`error{code, message}` is parsed."""
    project = VideoProject.model_validate(
        {"id": "p", "status": "error", "error": {"code": "no_source_face", "message": "No face"}}
    )
    assert project.error is not None and project.error.code == "no_source_face"


def test_unknown_status_is_rejected() -> None:
    """A status outside the documented enum is a schema error, not a silent non-terminal state."""
    with pytest.raises(pydantic.ValidationError):
        VideoProject.model_validate({"id": "p", "status": "exploded"})


def test_signed_urls_stay_out_of_repr() -> None:
    """Logging a model never prints a signed URL."""
    upload = UploadUrl.model_validate({"upload_url": SIGNED, "expires_at": None, "file_path": "api-assets/x.mp4"})
    project = VideoProject.model_validate({"id": "p", "status": "complete", "downloads": [{"url": SIGNED}]})
    assert "sig=" not in repr(upload)
    assert "sig=" not in repr(project)
    assert "sig=" not in str(project)


def test_created_job_and_account_ignore_extra_fields() -> None:
    """`estimated_frame_cost` and future fields do not break parsing."""
    job = CreatedJob.model_validate({"id": "j", "credits_charged": 30, "estimated_frame_cost": 30})
    assert job.id == "j"
    account = Account.model_validate(
        {"id": "a", "email": None, "credits": 5, "tier": "free", "subscription": None, "new": True}
    )
    assert account.credits == 5 and account.subscription is None


@pytest.mark.parametrize("model", [Account, CreatedJob, VideoProject])
def test_sandbox_flag_never_comes_from_a_body(model: type[Account | CreatedJob | VideoProject]) -> None:
    """A body that claims `"sandbox": true` (or nonsense) is not believed; only the client sets it."""
    body = {"id": "x", "credits": 1, "tier": "free", "credits_charged": 1, "status": "complete"}
    assert model.model_validate_json(json.dumps({**body, "sandbox": True})).sandbox is False
    assert model.model_validate_json(json.dumps({**body, "sandbox": "garbage"})).sandbox is False
    assert model.model_validate_json(json.dumps(body)).sandbox is False
    # Code that builds a model itself (tests, fakes) may say so explicitly.
    assert model.model_validate({**body, "sandbox": True}).sandbox is True
