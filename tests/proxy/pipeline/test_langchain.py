"""LangChain's ``ChatOpenAI`` through the proxy: structured output and tool calls work on the
simulated models, on both forwarding paths (json_schema and function_calling methods)."""

from __future__ import annotations

import pytest
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field
from support.proxy_harness import RunningProxy, _shared_proxy, module_proxy_factory, path, proxy

__all__ = ["_shared_proxy", "module_proxy_factory", "path", "proxy"]


class Ticket(BaseModel):
    """A support ticket triaged from a message."""

    summary: str
    priority: int = Field(ge=1, le=5)
    tags: list[str] = Field(min_length=1)


def chat_model(proxy: RunningProxy) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=proxy.base_url,
        api_key="unused",  # type: ignore[arg-type]
        model="auto",
        max_retries=0,
        default_headers={"X-Agent": "langchain"},
    )


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_with_structured_output(proxy: RunningProxy, method: str) -> None:
    structured = chat_model(proxy).with_structured_output(Ticket, method=method, include_raw=True)
    result = structured.invoke("My login page is broken, please triage")
    assert isinstance(result, dict) and result["parsing_error"] is None
    assert isinstance(result["parsed"], Ticket)
    outcome, _ = proxy.last()
    assert outcome.agent == "langchain" and outcome.model == "m1"
    assert outcome.wants_json == (method == "json_schema")


def test_bound_tools_are_called_when_asked(proxy: RunningProxy) -> None:
    tooled = chat_model(proxy).bind_tools([Ticket])
    called = tooled.invoke("Open a Ticket for the broken login page")
    chatted = tooled.invoke("How are you today?")
    (call,) = called.tool_calls  # type: ignore[attr-defined]
    assert call["name"] == "Ticket"
    assert Ticket.model_validate(call["args"]).priority == 1
    assert chatted.tool_calls == [] and chatted.content == "Simulated reply from m1."  # type: ignore[attr-defined]
