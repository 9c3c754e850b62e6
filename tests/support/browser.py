"""A real headless Chromium (Debian's package) driven by Playwright, and where screenshots go.

``playwright install`` needs the internet; the system browser is used instead
(``CHROMIUM`` overrides its path). Screenshots go to ``$DASHBOARD_ARTIFACTS`` when set (the
README's picture is made with ``DASHBOARD_ARTIFACTS=docs``), else to a temporary directory;
their paths are printed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@dataclass
class Watched:
    """A page and every console error, uncaught exception and URL it requested."""

    page: Page
    errors: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Closed after each module: Playwright's sync API keeps an event loop running in this
    thread while it is open, which ``asyncio.run`` in later tests would refuse."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def watch(page: Page) -> Watched:
    """Start collecting ``page``'s console errors, page errors and request URLs."""
    watched = Watched(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.errors.append(f"page error: {error}"))
    page.on("request", lambda request: watched.urls.append(request.url))
    return watched


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The screenshot directory."""
    chosen = os.environ.get("DASHBOARD_ARTIFACTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("dashboard-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def screenshot(page: Page, directory: Path, name: str) -> Path:
    """A full-page PNG of ``page`` as ``<directory>/<name>.png`` (path printed)."""
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path
