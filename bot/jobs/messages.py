"""Plain-words explanations of Magic Hour job errors, for the member who asked for the job."""

from __future__ import annotations

_JOB_ERRORS = {
    "no_source_face": (
        "Magic Hour couldn't find a face in the video. Use a clip with one clear, front-facing, well-lit face."
    ),
    "invalid_video_file": "Magic Hour couldn't read the video. Try exporting it again as an MP4 (H.264).",
    "invalid_audio_file": "Magic Hour couldn't read the audio. Try exporting it again as an MP3 or WAV.",
    "invalid_youtube_url": (
        "Magic Hour couldn't use that YouTube video (it may be private, age- or region-restricted). "
        "Download it and attach the file instead."
    ),
    "invalid_video_path": "Magic Hour couldn't find the uploaded video. Please try again.",
    "invalid_audio_path": "Magic Hour couldn't find the uploaded audio. Please try again.",
    "file_too_large": "The file is larger than the Magic Hour plan allows. Send a shorter or smaller clip.",
    "insufficient_credits": "The bot's Magic Hour account ran out of credits. Please tell a server manager.",
    "invalid_parameters": "Magic Hour refused the job's settings. Try a different window or mode.",
    "processing_timeout": "Magic Hour took too long to render this clip. Try a shorter clip.",
}


def explain_job_error(code: str | None, api_message: str | None) -> str:
    """A sentence a member can act on; unknown codes fall back to the API's own message."""
    if code and code in _JOB_ERRORS:
        return _JOB_ERRORS[code]
    detail = f" ({api_message})" if api_message else ""
    return f"Magic Hour couldn't render this job{detail}. Nothing was charged; please try again later."
