"""Upstream error bodies become message text without HTML markup."""

from __future__ import annotations

import pytest

from proxy.forwarding.error_bodies import plain_error_text

NGINX_413 = (
    "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n"
    "<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (NGINX_413, "an HTML page titled '413 Request Entity Too Large'"),
        ("<!DOCTYPE html><html><body>Bad gateway</body></html>", "an HTML page"),
        ("  <HTML><TITLE>\n 502   Bad\tGateway </TITLE>", "an HTML page titled '502 Bad Gateway'"),
        ("upstream connect error before headers", "upstream connect error before headers"),
        ("a < b and <b> is bold", "a < b and <b> is bold"),
    ],
)
def test_plain_error_text(body: str, text: str) -> None:
    assert plain_error_text(body) == text
