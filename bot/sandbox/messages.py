"""The words of the sandbox's error answers: the message of each injected HTTP status, and of each job error."""

from __future__ import annotations

# Messages the sandbox puts on a failed job when a job_error fault gives none.
JOB_ERROR_MESSAGES: dict[str, str] = {
    "invalid_audio_file": "The audio file could not be read.",
    "invalid_video_file": "The video file could not be read.",
    "invalid_image_file": "The image file could not be read.",
    "invalid_youtube_url": "The YouTube video could not be downloaded.",
    "invalid_audio_path": "The audio file could not be found.",
    "invalid_video_path": "The video file could not be found.",
    "no_source_face": "No face was detected in the video.",
    "file_too_large": "The file is too large.",
    "insufficient_credits": "Not enough credits to render the video.",
    "invalid_parameters": "The parameters are invalid.",
    "processing_timeout": "Rendering took too long.",
    "unknown_error": "An unknown error occurred.",
}

STATUS_MESSAGES: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment required",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    422: "Unable to create video",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
