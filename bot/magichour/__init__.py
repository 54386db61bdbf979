"""Async client for the Magic Hour API: typed models, a careful retry policy, streamed transfers.

async with MagicHourClient(SecretStr(key)) as mh:
    video, audio = await mh.create_upload_urls([UploadItem(type="video", extension="mp4"),
                                                UploadItem(type="audio", extension="mp3")])
    await mh.upload_file(video.upload_url, video_path)
    ...
    job = await mh.create_lip_sync(LipSyncRequest.from_paths(...))   # never resent
    project = await mh.get_video_project(job.id)
    if project.is_complete:
        await mh.download(project.downloads[0].url, dest)
"""

from __future__ import annotations

from ._client import API_TIMEOUT, CHUNK_SIZE, DEFAULT_BASE_URL, STORAGE_TIMEOUT, MagicHourClient
from ._errors import (
    DownloadExpired,
    InsufficientCredits,
    InvalidRequest,
    MagicHourError,
    NotFound,
    NotOnPlan,
    RateLimited,
    StorageError,
    SubmissionUncertain,
    Unauthorized,
    Unavailable,
    UnexpectedResponse,
    UploadUrlExpired,
)
from ._models import (
    SANDBOX_HEADER,
    Account,
    CreatedJob,
    Download,
    LipSyncAssets,
    LipSyncRequest,
    LipSyncStyle,
    ProjectError,
    ProjectStatus,
    Subscription,
    UploadItem,
    UploadUrl,
    VideoProject,
)
from ._retry import RetryPolicy, redact_url

__all__ = [
    "API_TIMEOUT",
    "CHUNK_SIZE",
    "DEFAULT_BASE_URL",
    "SANDBOX_HEADER",
    "STORAGE_TIMEOUT",
    "Account",
    "CreatedJob",
    "Download",
    "DownloadExpired",
    "InsufficientCredits",
    "InvalidRequest",
    "LipSyncAssets",
    "LipSyncRequest",
    "LipSyncStyle",
    "MagicHourClient",
    "MagicHourError",
    "NotFound",
    "NotOnPlan",
    "ProjectError",
    "ProjectStatus",
    "RateLimited",
    "RetryPolicy",
    "StorageError",
    "SubmissionUncertain",
    "Subscription",
    "Unauthorized",
    "Unavailable",
    "UnexpectedResponse",
    "UploadItem",
    "UploadUrl",
    "UploadUrlExpired",
    "VideoProject",
    "redact_url",
]
