"""With a master key the dashboard asks for it once (a POSTed form), keeps an HttpOnly,
SameSite=Strict session cookie that is not the key, shows nothing without it, and never
puts the key in a URL."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Browser
from support.browser import screenshot, watch
from support.dashboard_traffic import AGENTS, config, drive
from support.servers import FakeUpstream
from support.tracking_support import Starter, backend, start_proxy

__all__ = ["backend", "start_proxy"]

KEY = "sk-master-dashboard-test-7781"


def test_login_flow(
    start_proxy: Starter, fake_upstream: FakeUpstream, browser: Browser, artifacts: Path, backend: str
) -> None:
    proxy = start_proxy(config(fake_upstream, master_key=KEY))
    drive(proxy, fake_upstream, per_agent=2)
    assert httpx.get(proxy.url + "/dashboard/api/overview").status_code == 401
    bare = httpx.get(proxy.url + "/dashboard", follow_redirects=False)
    assert bare.status_code == 303 and bare.headers["location"].startswith("/dashboard/login")
    assert "writer" not in httpx.get(proxy.url + "/dashboard", follow_redirects=True).text

    context = browser.new_context()
    page = context.new_page()
    watched = watch(page)
    page.goto(proxy.url + "/dashboard/agents/writer")
    assert page.url.startswith(proxy.url + "/dashboard/login")
    screenshot(page, artifacts, f"dashboard-login-{backend}")
    page.fill("#key", "sk-wrong-key")
    with page.expect_response(lambda r: r.url.endswith("/dashboard/login")) as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 401
    assert page.locator(".error").inner_text() == "Wrong key."
    assert context.cookies() == []
    watched.errors.clear()  # the 401 answer is logged by the browser as a failed resource

    page.fill("#key", KEY)
    page.click("button[type=submit]")
    page.wait_for_selector("#agent-models table")
    assert page.url == proxy.url + "/dashboard/agents/writer"
    (cookie,) = context.cookies()
    assert cookie["name"] == "mm_dashboard" and cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/dashboard" and KEY not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # HttpOnly: scripts cannot read it

    page.goto(proxy.url + "/dashboard")
    for agent in AGENTS:
        assert page.locator(f'#agents tr[data-row="{agent}"]').count() == 1
    api = page.request.get(proxy.url + "/dashboard/api/overview")
    assert api.status == 200 and api.json()["data"]["totals"]["requests"] == 2 * len(AGENTS)
    forged = httpx.get(proxy.url + "/dashboard/api/overview", cookies={"mm_dashboard": cookie["value"] + "0"})
    assert forged.status_code == 401
    assert all(KEY not in url for url in watched.urls)
    assert watched.errors == []

    page.click("nav button")
    page.wait_for_url("**/dashboard/login**")
    assert context.cookies() == []
    assert page.request.get(proxy.url + "/dashboard/api/overview").status == 401
