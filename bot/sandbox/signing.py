"""Presigned URLs for the storage listener: an HMAC over method, path and expiry, like S3's."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from enum import Enum
from urllib.parse import quote, urlencode


class SignatureCheck(Enum):
    """Why a signed URL is or is not accepted."""

    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"
    EXPIRED = "expired"


class UrlSigner:
    """Signs and checks URLs with a key that lives only as long as the sandbox."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def _signature(self, method: str, path: str, expires: int) -> str:
        message = f"{method.upper()}\n{path}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign(self, base_url: str, method: str, path: str, expires: int) -> str:
        """A full URL for `method` on `path` (which starts with "/"), valid until `expires` (Unix seconds)."""
        query = urlencode({"expires": expires, "sig": self._signature(method, path, expires)})
        return f"{base_url}{quote(path)}?{query}"

    def check(self, method: str, path: str, query: Mapping[str, str], now: float) -> SignatureCheck:
        """Whether `query` carries a valid, unexpired signature for `method` on `path`."""
        expires_text = query.get("expires")
        sig = query.get("sig")
        if not expires_text or not sig:
            return SignatureCheck.MISSING
        try:
            expires = int(expires_text)
        except ValueError:
            return SignatureCheck.INVALID
        if not hmac.compare_digest(sig, self._signature(method, path, expires)):
            return SignatureCheck.INVALID
        if now >= expires:
            return SignatureCheck.EXPIRED
        return SignatureCheck.OK
