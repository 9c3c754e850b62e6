"""The 400 for requests uvicorn's HTTP parser rejects before the app runs, OpenAI-shaped.

A control character in a header value, a malformed request line or a header line without a
colon never reaches the app: uvicorn's protocol answers it through ``send_400_response`` with a
plain-text body. The protocols named by ``protocol()`` answer with ``response()`` instead: the
same ``{"error": {...}}`` JSON as every other bad request, the server's default headers,
``content-length`` and ``connection: close``. The body is fixed text: the rejected bytes are
never echoed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

import orjson

from proxy.wire.errors import ProxyError

CODE = "invalid_http_request"
MESSAGE = (
    "invalid HTTP request: the request line or a header could not be parsed "
    "(e.g. a control character in a header value, or a header line without a colon)"
)


def response(default_headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The whole HTTP/1.1 400 response: status line, ``default_headers``, JSON error body."""
    body = orjson.dumps(ProxyError(400, CODE, MESSAGE).payload())
    lines = [b"HTTP/1.1 400 Bad Request"]
    lines += [name + b": " + value for name, value in default_headers]
    lines += [
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode("ascii"),
        b"connection: close",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def protocol() -> str:
    """Import string for uvicorn's ``http=``: the httptools protocol when httptools is
    installed (as uvicorn's ``auto`` picks), else h11's. A string, so the processes that
    ``--workers`` spawns import it themselves."""
    if importlib.util.find_spec("httptools") is not None:
        return "proxy.http.bad_http.httptools:JsonErrorHttpToolsProtocol"
    return "proxy.http.bad_http.h11:JsonErrorH11Protocol"
