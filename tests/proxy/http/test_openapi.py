"""GET /openapi.json describes every route the app registers, and nothing it does not."""

from __future__ import annotations

import re

import httpx
import schemathesis
from starlette.routing import Mount, Route
from support.proxy_harness import ProxyFactory, basic_config, proxy_factory
from support.servers import FakeUpstream

from proxy.app import create_app
from proxy.config.settings import parse_config
from proxy.http.openapi import openapi_document
from proxy.pipeline.request import OPTIONAL_FIELDS

__all__ = ["proxy_factory"]

MOUNTS_NOT_DESCRIBED = frozenset({"/simulator", "/dashboard/static"})
"""Mounted apps that are not endpoints of the proxy: the demo simulator, the dashboard's files."""
KEY = "sk-master-openapi"


def registered_operations(config: dict[str, object]) -> set[tuple[str, str]]:
    """(path in OpenAPI form, method) of every Route of the app; a Mount fails unless exempt."""
    found: set[tuple[str, str]] = set()
    for route in create_app(parse_config(config)).routes:
        if isinstance(route, Mount):
            assert route.path in MOUNTS_NOT_DESCRIBED, f"mounted app {route.path} is not described"
            continue
        assert isinstance(route, Route), f"{route!r}: describe it in proxy/http/openapi.py"
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        found |= {(path, method.lower()) for method in route.methods or () if method != "HEAD"}
    return found


def described_operations() -> set[tuple[str, str]]:
    return {(path, method) for path, item in openapi_document()["paths"].items() for method in item}


def test_every_registered_route_is_described(fake_upstream: FakeUpstream) -> None:
    config = basic_config(fake_upstream, simulator={"models": {"sim-a": {}}})
    registered = registered_operations(config)
    described = described_operations()
    assert registered - described == set(), "routes missing from proxy/http/openapi.py"
    assert described - registered == set(), "described operations the app does not serve"
    assert ("/v1/chat/completions", "post") in registered and ("/metrics", "get") in registered


def test_description_loads_and_every_operation_is_usable() -> None:
    schema = schemathesis.openapi.from_dict(openapi_document())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(described_operations())


def test_chat_request_schema_lists_the_validated_fields() -> None:
    request = openapi_document()["components"]["schemas"]["ChatCompletionRequest"]
    assert request["required"] == ["messages"]
    assert set(OPTIONAL_FIELDS) | {"messages"} == set(request["properties"])
    headers = openapi_document()["paths"]["/v1/chat/completions"]["post"]["parameters"]
    patterns = {h["name"]: h["schema"].get("pattern") for h in headers}
    assert re.fullmatch(patterns["x-agent"], "support-bot") and not re.fullmatch(patterns["x-agent"], "-x")
    assert re.fullmatch(patterns["x-workflow"], "wf:" + "a" * 120)
    assert not re.fullmatch(patterns["x-workflow"], "a" * 129)


def test_served_with_the_master_key_only(proxy_factory: ProxyFactory, fake_upstream: FakeUpstream) -> None:
    proxy = proxy_factory(basic_config(fake_upstream, server={"master_key": KEY}))
    served = httpx.get(f"{proxy.url}/openapi.json", headers={"Authorization": f"Bearer {KEY}"})
    assert served.status_code == 200 and served.headers["content-type"] == "application/json"
    assert served.json() == openapi_document()
    assert served.json()["openapi"] == "3.1.0"
    refused = httpx.get(f"{proxy.url}/openapi.json")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
