"""Whole pages: the shared layout (nav, section placeholders, chart slots) and the login form."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import orjson

from proxy.dashboard.views import Sections

REFRESH_S = 5
NAV = (("/dashboard", "Overview"), ("/dashboard/workflows", "Workflows"))
STATIC = "/dashboard/static"


def page(
    *, title: str, api: str, sections: Sections, order: Sequence[tuple[str, str]], charts: list[object],
    chart_ids: Sequence[str] = (), intro: str = "", logout: bool = False,
) -> str:
    """A dashboard page: ``order`` lists (section id, heading); charts go in ``chart_ids`` slots."""
    slots = "".join(f'<div class="chart" id="chart-{escape(c)}"></div>' for c in chart_ids)
    body = "".join(
        f'<section><h2>{escape(heading)}</h2><div id="{escape(sid)}">{sections.get(sid, "")}</div></section>'
        for sid, heading in order
    )
    charts_json = orjson.dumps(charts).decode().replace("</", "<\\/")
    grid = f'<section class="charts">{slots}</section>' if slots else ""
    return _layout(
        title,
        f'<body data-api="{escape(api)}" data-refresh="{REFRESH_S}">{_nav(logout)}<main>'
        f"<h1>{escape(title)}</h1>{intro}{grid}{body}</main>"
        f'<script type="application/json" id="charts-data">{charts_json}</script>'
        f'<script src="{STATIC}/vendor/uplot/uPlot.iife.min.js"></script>'
        f'<script src="{STATIC}/dashboard.js"></script></body>',
    )


def login(*, error: str = "", next_path: str = "/dashboard") -> str:
    """The master-key form (POSTed: the key never goes into a URL)."""
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    form = (
        '<form method="post" action="/dashboard/login" class="login">'
        '<label for="key">Master key</label>'
        '<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>'
        f'<input type="hidden" name="next" value="{escape(next_path)}">'
        '<button type="submit">Open the dashboard</button></form>'
    )
    return _layout("Sign in", f"<body><main><h1>Model Manager</h1>{message}{form}</main></body>")


def _nav(logout: bool) -> str:
    links = "".join(f'<a href="{href}">{label}</a>' for href, label in NAV)
    out = (
        '<form method="post" action="/dashboard/logout"><button type="submit">Sign out</button></form>'
        if logout else ""
    )
    return f'<nav><strong>Model Manager</strong>{links}<span id="updated"></span>{out}</nav>'


def _layout(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} \u00b7 Model Manager</title>"
        '<link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{STATIC}/vendor/uplot/uPlot.min.css">'
        f'<link rel="stylesheet" href="{STATIC}/dashboard.css"></head>{body}</html>'
    )
