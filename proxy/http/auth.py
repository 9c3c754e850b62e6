"""Who is calling: the master key or a client key (proxy.config.keys), and what it may reach.

Every path but the open ones needs ``Authorization: Bearer <key>``; the key's scopes decide
which paths: ``chat`` for the model endpoints, ``admin`` for the rest. Admin paths that show
every agent at once (metrics, /ready, /openapi.json, the dashboard) also need a key whose
``agents`` include ``*``; the per-agent admin endpoints check the agents in their handlers
(proxy.http.grants). A key over its ``rpm`` gets 429 with Retry-After. The matched key is put
in the request's state (``request.state.client_key``). Paths under an ``own_auth`` prefix are
passed through: their handlers check access themselves (the dashboard's session cookie).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.config.keys import ADMIN, CHAT, ClientKey, digest_of
from proxy.http.key_rates import KeyRates
from proxy.wire.errors import ProxyError, error_response

OPEN_PATHS = frozenset({"/health"})
CHAT_PATHS = ("/chat/completions", "/responses", "/embeddings", "/models")
AGENT_ADMIN_PATHS = ("/stats", "/workflows", "/feedback", "/requests")
STATE_FIELD = "client_key"


class KeyRing:
    """The keys the proxy accepts, matched by SHA-256 digest in constant time."""

    def __init__(self, keys: Sequence[ClientKey]) -> None:
        self.keys = tuple(keys)

    def identify(self, offered: str) -> ClientKey | None:
        """The key ``offered`` is, or None; every key is compared (no early exit)."""
        digest = digest_of(offered)
        found = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found

    def by_id(self, key_id: str) -> ClientKey | None:
        return next((key for key in self.keys if key.key_id == key_id), None)


def bearer(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The token of the ``Authorization: Bearer`` header, if any."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token if scheme == "Bearer" else None
    return None


def needed_scope(path: str) -> str:
    """``chat`` for the model endpoints (with or without /v1), ``admin`` for every other one."""
    bare = path[3:] if path.startswith("/v1/") else path
    return CHAT if any(bare == p or bare.startswith(p + "/") for p in CHAT_PATHS) else ADMIN


def per_agent(path: str) -> bool:
    """Whether an admin path answers about named agents (checked in its handler)."""
    bare = path[3:] if path.startswith("/v1/") else path
    return any(bare == p or bare.startswith(p + "/") for p in AGENT_ADMIN_PATHS)


def refusal(key: ClientKey, path: str) -> ProxyError | None:
    """Why ``key`` may not reach ``path`` (403 permission_denied), or None."""
    scope = needed_scope(path)
    if not key.has(scope):
        message = f"key {key.key_id!r} lacks the {scope!r} scope for {path}"
        return ProxyError(403, "permission_denied", message)
    if scope == ADMIN and not per_agent(path) and not key.every_agent:
        return ProxyError(
            403, "permission_denied", f"{path} shows every agent: key {key.key_id!r} needs agents ['*']"
        )
    return None


class KeyMiddleware:
    """401 without a known key, 403 outside its scopes, 429 over its rpm (OpenAI-shaped)."""

    def __init__(self, app: ASGIApp, *, keys: KeyRing, own_auth: tuple[str, ...] = ()) -> None:
        self.app = app
        self._keys = keys
        self._own_auth = own_auth
        self._rates = KeyRates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._open(scope["path"]):
            await self.app(scope, receive, send)
            return
        error = self._check(scope)
        if error is not None:
            await error_response(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> ProxyError | None:
        token = bearer(scope["headers"])
        key = None if token is None else self._keys.identify(token)
        if key is None:
            return ProxyError(401, "invalid_api_key", "missing or invalid key (Authorization: Bearer ...)")
        denied = refusal(key, scope["path"])
        if denied is not None:
            return denied
        wait = self._rates.retry_after(key)
        if wait is not None:
            message = f"key {key.key_id!r} is over its {key.rpm} requests per minute"
            return ProxyError(429, "rate_limit_exceeded", message, headers={"Retry-After": str(wait)})
        scope.setdefault("state", {})[STATE_FIELD] = key
        return None

    def _open(self, path: str) -> bool:
        return path in OPEN_PATHS or any(path == p or path.startswith(p + "/") for p in self._own_auth)
