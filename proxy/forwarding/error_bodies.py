"""An upstream error body as text fit for an error message: never a whole HTML page."""

from __future__ import annotations

import re

_HTML = re.compile(r"<\s*(!doctype|html|head|body)\b", re.IGNORECASE)
_TITLE = re.compile(r"<title[^>]*>([^<]{0,120})</title>", re.IGNORECASE)


def plain_error_text(text: str) -> str:
    """``text`` itself, or for an HTML page (a gateway's or load balancer's error page)
    ``"an HTML page"`` with its title, so no markup reaches a client or a log line."""
    if _HTML.search(text) is None:
        return text
    title = _TITLE.search(text)
    named = " ".join(title.group(1).split()) if title else ""
    return f"an HTML page titled {named!r}" if named else "an HTML page"
