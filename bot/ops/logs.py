"""`LOG_FORMAT=json`: one JSON object per line, carrying the job's number where there is one.

Fields: `time` (UTC, ISO 8601), `level`, `logger`, `message`, `job` (when known) and `exception`
(a traceback, when there is one). The job's number comes from the job's task (the engine sets
`bot.jobs.observe.current_job` in each job's task), else from a message that starts "job 12:".
Secrets never reach the line: `bot.logsafety.RedactingFilter` runs on every handler before any
formatter, and rewrites the message and the traceback this formatter reads.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re

from bot.jobs.observe import current_job

_JOB_PREFIX = re.compile(r"^job #?(\d+)\b")


def job_of(record: logging.LogRecord, message: str) -> int | None:
    """The job a record is about: given with `extra={"job": n}`, the task's job, or "job n" leading its text."""
    given = getattr(record, "job", None)
    if isinstance(given, int):
        return given
    current = current_job.get()
    if current is not None:
        return current
    match = _JOB_PREFIX.match(message)
    return int(match.group(1)) if match else None


class JsonFormatter(logging.Formatter):
    """Formats each record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON object on one line."""
        message = record.getMessage()
        line: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        job = job_of(record, message)
        if job is not None:
            line["job"] = job
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)
