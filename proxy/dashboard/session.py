"""Dashboard sessions: HMAC-signed tokens for a cookie, so the master key is asked once.

A token is ``v1.<expires>.<nonce>.<signature>``: the signature is HMAC-SHA256 over
``v1.<expires>.<nonce>`` with a key derived from the master key (never the key itself), so
every replica sharing the master key accepts it, and changing the key ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

COOKIE = "mm_dashboard"
SESSION_S = 12 * 3600
_VERSION = "v1"
_PURPOSE = b"model-manager dashboard session"


class Sessions:
    """Issues and checks session tokens for one master key."""

    def __init__(self, master_key: str, *, clock: Callable[[], float] = time.time) -> None:
        self._secret = hmac.new(master_key.encode(), _PURPOSE, hashlib.sha256).digest()
        self._master = master_key.encode()
        self._clock = clock

    def key_matches(self, offered: str) -> bool:
        """Whether ``offered`` is the master key (constant time)."""
        return hmac.compare_digest(offered.encode(), self._master)

    def issue(self) -> str:
        """A token valid for SESSION_S seconds."""
        body = f"{_VERSION}.{int(self._clock()) + SESSION_S}.{secrets.token_urlsafe(12)}"
        return f"{body}.{self._sign(body)}"

    def valid(self, token: str | None) -> bool:
        """Whether ``token`` was issued for this key and has not expired."""
        if not token:
            return False
        body, _, signature = token.rpartition(".")
        parts = body.split(".")
        if len(parts) != 3 or parts[0] != _VERSION or not parts[1].isdigit():
            return False
        return hmac.compare_digest(signature, self._sign(body)) and int(parts[1]) > self._clock()

    def _sign(self, body: str) -> str:
        return hmac.new(self._secret, body.encode(), hashlib.sha256).hexdigest()
