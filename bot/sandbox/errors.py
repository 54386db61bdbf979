"""The one error a sandbox job ends with."""

from __future__ import annotations


class RenderError(Exception):
    """A job failure, with the Magic Hour job error code it maps to."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
