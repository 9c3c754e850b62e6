"""Optional master key: every path but the open ones needs ``Authorization: Bearer <key>``.

Paths under an ``own_auth`` prefix are passed through: their handlers check access
themselves (the dashboard's session cookie)."""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.wire.errors import ProxyError, error_response

OPEN_PATHS = frozenset({"/health"})


class MasterKeyMiddleware:
    """Rejects requests without the master key with an OpenAI-shaped 401."""

    def __init__(self, app: ASGIApp, *, master_key: str, own_auth: tuple[str, ...] = ()) -> None:
        self.app = app
        self._expected = f"Bearer {master_key}".encode()
        self._own_auth = own_auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._open(scope["path"]) or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        error = ProxyError(
            401, "invalid_api_key", "missing or invalid master key (Authorization: Bearer ...)"
        )
        await error_response(error)(scope, receive, send)

    def _open(self, path: str) -> bool:
        return path in OPEN_PATHS or any(path == p or path.startswith(p + "/") for p in self._own_auth)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return hmac.compare_digest(value, self._expected)
        return False
