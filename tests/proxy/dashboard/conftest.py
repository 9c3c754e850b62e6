"""One Chromium for every dashboard test (a second Playwright cannot start in the same thread)."""

from support.browser import artifacts, browser

__all__ = ["artifacts", "browser"]
