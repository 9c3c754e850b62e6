"""uvicorn's httptools protocol, answering unparseable requests with bad_http's JSON 400."""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from proxy.http.bad_http import answer as bad_http


class JsonErrorHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose parser-level 400 is OpenAI-shaped JSON."""

    def send_400_response(self, msg: str) -> None:
        """Write ``bad_http.response`` and close (``msg``, uvicorn's plain text, is not sent)."""
        self.transport.write(bad_http.response(self.server_state.default_headers))
        self.transport.close()
