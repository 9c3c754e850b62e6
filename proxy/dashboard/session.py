"""Dashboard sessions: HMAC-signed tokens for a cookie, so a key is asked once.

A token is ``v2.<expires>.<key id>.<nonce>.<signature>``: bound to the key id, never the key.
The signature is HMAC-SHA256 over ``v2.<expires>.<key id>.<nonce>`` with a secret derived
from that key's SHA-256 digest, so every replica with the same keys accepts it, and changing
or removing the key ends its sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

from proxy.config.keys import ClientKey
from proxy.http.auth import KeyRing

COOKIE = "mm_dashboard"
SESSION_S = 12 * 3600
_VERSION = "v2"
_PURPOSE = b"model-manager dashboard session"


class Sessions:
    """Issues and checks session tokens for the keys of one KeyRing."""

    def __init__(self, keys: KeyRing, *, clock: Callable[[], float] = time.time) -> None:
        self._keys = keys
        self._clock = clock

    def issue(self, key: ClientKey) -> str:
        """A token for ``key`` valid for SESSION_S seconds."""
        body = f"{_VERSION}.{int(self._clock()) + SESSION_S}.{key.key_id}.{secrets.token_urlsafe(12)}"
        return f"{body}.{_sign(key, body)}"

    def valid(self, token: str | None) -> ClientKey | None:
        """The key ``token`` was issued for, if it is still configured and the token unexpired."""
        if not token:
            return None
        body, _, signature = token.rpartition(".")
        parts = body.split(".")
        if len(parts) != 4 or parts[0] != _VERSION or not parts[1].isdigit():
            return None
        key = self._keys.by_id(parts[2])
        if key is None or not hmac.compare_digest(signature, _sign(key, body)):
            return None
        return key if int(parts[1]) > self._clock() else None


def _sign(key: ClientKey, body: str) -> str:
    secret = hmac.new(key.digest, _PURPOSE, hashlib.sha256).digest()
    return hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
