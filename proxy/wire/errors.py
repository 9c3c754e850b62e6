"""OpenAI-shaped errors: ``{"error": {"message", "type", "param", "code"}}`` for JSON and SSE."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.responses import Response

TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class ProxyError(Exception):
    """An error the proxy returns to its client, with an HTTP status and an OpenAI code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        details: object = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = dict(headers or {})
        self.details = details

    @property
    def type(self) -> str:
        return TYPE_BY_STATUS.get(self.status, "server_error" if self.status >= 500 else "api_error")

    def payload(self) -> dict[str, object]:
        error: dict[str, object] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


def error_response(error: ProxyError, headers: Mapping[str, str] | None = None) -> Response:
    """The JSON response for ``error``."""
    return Response(
        orjson.dumps(error.payload()),
        status_code=error.status,
        media_type="application/json",
        headers={**error.headers, **(headers or {})},
    )


def sse_error_event(error: ProxyError) -> bytes:
    """One SSE event carrying ``error``; the openai SDK raises APIError when it reads it."""
    return b"data: " + orjson.dumps(error.payload()) + b"\n\n"


def bad_request(message: str, *, code: str = "invalid_request", param: str | None = None) -> ProxyError:
    return ProxyError(400, code, message, param=param)
