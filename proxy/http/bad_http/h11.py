"""uvicorn's h11 protocol, answering unparseable requests with bad_http's JSON 400."""

from __future__ import annotations

from uvicorn.protocols.http.h11_impl import H11Protocol

from proxy.http.bad_http import answer as bad_http


class JsonErrorH11Protocol(H11Protocol):
    """H11Protocol whose parser-level 400 is OpenAI-shaped JSON.

    The bytes are written directly rather than through h11's state machine (which is in its
    error state and would add no default headers): the connection closes right after.
    """

    def send_400_response(self, msg: str) -> None:
        """Write ``bad_http.response`` and close (``msg``, uvicorn's plain text, is not sent)."""
        self.transport.write(bad_http.response(self.server_state.default_headers))
        self.transport.close()
