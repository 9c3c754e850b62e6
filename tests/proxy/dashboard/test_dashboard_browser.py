"""The dashboard in a real headless Chromium after real traffic, on the embedded store and on
Redis: every page shows the agents, models and numbers of /v1/stats and /v1/workflows,
refreshes itself without reloading, logs no console error, and is screenshotted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from support.browser import screenshot, watch
from support.dashboard_traffic import AGENTS, WORKFLOW, client_for, config, drive
from support.servers import FakeUpstream
from support.tracking_support import Proxy, Starter, backend, start_proxy

__all__ = ["backend", "start_proxy"]


def cell(page: Page, row: str, key: str, within: str = "") -> str:
    return page.locator(f'{within} tr[data-row="{row}"] td[data-k="{key}"]').inner_text().strip()


def integer(text: str) -> int:
    return int(text.replace(",", ""))


def card(page: Page, key: str) -> str:
    return page.locator(f'.card[data-k="{key}"] .value').inner_text().strip()


@pytest.fixture
def running(start_proxy: Starter, fake_upstream: FakeUpstream) -> tuple[Proxy, Any]:
    proxy = start_proxy(config(fake_upstream))
    return proxy, drive(proxy, fake_upstream)


def test_pages_show_what_the_stats_say(
    running: tuple[Proxy, Any], browser: Browser, artifacts: Path, backend: str
) -> None:
    proxy, sent = running
    stats = {a["agent"]: a for a in proxy.get("/v1/stats").json()["agents"]}
    assert set(stats) == set(AGENTS)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    watched = watch(page)

    page.goto(proxy.url + "/dashboard")
    page.wait_for_selector(".uplot")
    assert integer(card(page, "requests")) == sum(a["requests"] for a in stats.values()) == sent.count
    fallbacks = sum(m["fallbacks"] for a in stats.values() for m in a["models"])
    assert fallbacks > 0 and integer(card(page, "fallbacks")) == fallbacks
    for agent, row in stats.items():
        assert integer(cell(page, agent, "requests", "#agents")) == row["requests"]
    assert page.locator(".uplot").count() == 4
    assert cell(page, "m-broken", "state", "#models") in {"ok", "resting"}
    screenshot(page, artifacts, f"dashboard-overview-{backend}")

    page.click('#agents a:text("coder")')
    page.wait_for_selector("#agent-models table")
    coder = stats["coder"]
    for model in coder["models"]:
        name = model["model"]
        assert integer(cell(page, name, "calls", "#agent-models")) == model["calls"]
        assert integer(cell(page, name, "decisions", "#agent-models")) == model["decisions"]
        assert cell(page, name, "posterior_mean", "#agent-models") == f'{model["posterior"]["mean"]:.3f}'
        assert page.locator(f'#posteriors figure[data-context=""] g[data-model="{name}"]').count() == 1
    recent = page.locator("#recent tr[data-row]")
    assert recent.count() == len(sent.request_ids["coder"])
    assert recent.first.get_attribute("data-row") == sent.request_ids["coder"][-1]
    assert page.locator('#posteriors figure[data-context^="code"]').count() == 1
    screenshot(page, artifacts, f"dashboard-agent-{backend}")

    workflow = proxy.get(f"/v1/workflows/{WORKFLOW}").json()
    page.goto(proxy.url + "/dashboard/workflows?agent=coder")
    assert integer(cell(page, WORKFLOW, "requests", "#workflow-list")) == workflow["requests"]
    assert cell(page, WORKFLOW, "outcome", "#workflow-list") == "success"
    screenshot(page, artifacts, f"dashboard-workflows-{backend}")
    page.goto(proxy.url + "/dashboard/workflows?status=open")
    assert page.locator(f'#workflow-list tr[data-row="{WORKFLOW}"]').count() == 0

    page.goto(proxy.url + "/dashboard/workflows")
    page.click(f'#workflow-list a:text("{WORKFLOW}")')
    page.wait_for_selector("#workflow-calls table")
    calls = page.locator("#workflow-calls tr[data-row]")
    assert [calls.nth(i).get_attribute("data-row") for i in range(calls.count())] == workflow["request_ids"]
    assert page.locator("#workflow-usage tr[data-row]").count() == len(workflow["usage"])
    assert card(page, "score") == "0.800"
    screenshot(page, artifacts, f"dashboard-workflow-{backend}")
    assert watched.errors == []


def test_the_overview_refreshes_without_reloading(
    running: tuple[Proxy, Any], browser: Browser, fake_upstream: FakeUpstream
) -> None:
    proxy, sent = running
    page = browser.new_page()
    watched = watch(page)
    page.goto(proxy.url + "/dashboard")
    page.evaluate("window.__sameDocument = true")
    before = integer(cell(page, "triage", "requests", "#agents"))
    with client_for(proxy, "triage") as client:
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    proxy.wait_recorded(sent.count + 1)
    page.wait_for_function(
        "n => Number(document.querySelector('#agents tr[data-row=\"triage\"] td[data-k=\"requests\"]')"
        ".textContent.replace(/,/g, '')) === n",
        arg=before + 1,
        timeout=15_000,
    )
    assert page.evaluate("window.__sameDocument") is True
    assert int(page.evaluate("document.body.dataset.refreshed")) >= 1
    assert watched.errors == []
