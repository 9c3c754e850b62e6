"""Small HTML builders: every text that came from data is escaped here."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from html import escape
from urllib.parse import quote

Cell = tuple[str, str]
"""(data key, inner HTML) of a table cell."""


def text(value: object) -> str:
    """``value`` as escaped text; None as an en dash."""
    return "\u2013" if value is None else escape(str(value))


def integer(value: float | None) -> str:
    return "\u2013" if value is None else f"{int(value):,}"


def percent(value: float | None) -> str:
    return "\u2013" if value is None else f"{value * 100:.1f}%"


def usd(value: float | None) -> str:
    return "\u2013" if value is None else f"${value:.6f}".rstrip("0").rstrip(".") if value else "$0"


def seconds(value: float | None) -> str:
    return "\u2013" if value is None else f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def number(value: float | None, digits: int = 3) -> str:
    return "\u2013" if value is None else f"{value:.{digits}f}"


def clock(epoch: float | None) -> str:
    """UTC time of day (with the date when not today)."""
    if epoch is None:
        return "\u2013"
    stamp = time.gmtime(epoch)
    today = time.gmtime().tm_yday == stamp.tm_yday
    return time.strftime("%H:%M:%S" if today else "%Y-%m-%d %H:%M", stamp) + "Z"


def link(href: str, label: str) -> str:
    return f'<a href="{escape(href)}">{escape(label)}</a>'


def path_part(name: str) -> str:
    """``name`` as one URL path segment."""
    return quote(name, safe="")


def table(headers: Sequence[str], rows: Iterable[tuple[str, Sequence[Cell]]], empty: str) -> str:
    """A table; each row is (its ``data-row`` id, cells). ``empty`` shows when there are none."""
    body = "".join(
        f'<tr data-row="{escape(row_id)}">'
        + "".join(f'<td data-k="{escape(k)}">{v}</td>' for k, v in cells)
        + "</tr>"
        for row_id, cells in rows
    )
    if not body:
        return f'<p class="empty">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def cards(items: Iterable[tuple[str, str, str]]) -> str:
    """Big numbers: (data key, label, value HTML)."""
    inner = "".join(
        f'<div class="card" data-k="{escape(k)}"><span class="label">{escape(label)}</span>'
        f'<span class="value">{value}</span></div>'
        for k, label, value in items
    )
    return f'<div class="cards">{inner}</div>'


def badge(state: str) -> str:
    return f'<span class="badge {escape(state.replace(" ", "-"))}">{escape(state)}</span>'
