"""What the calling key may see, checked in the handlers (the middleware checked the scope).

Without any key configured every request is unrestricted. A key limited to some agents gets
403 ``permission_denied`` for a chat under another agent (X-Agent), a model it does not list,
or stats, workflows, feedback and decision records of another agent; ``/v1/stats`` without
``?agent=`` lists only its agents, and ``/v1/workflows`` needs ``?agent=`` (one of its own).
A chat of a key with ``models`` is routed only among them (proxy.pipeline.candidates).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request

from proxy.config.keys import ClientKey
from proxy.config.settings import Config
from proxy.http.auth import STATE_FIELD
from proxy.pipeline.request import ChatRequest
from proxy.wire.errors import ProxyError
from proxy.wire.names import AUTO


def key_of(request: Request) -> ClientKey | None:
    """The key that authorised ``request``; None when the proxy needs no key."""
    key: ClientKey | None = request.scope.get("state", {}).get(STATE_FIELD)
    return key


def check_agent(request: Request, agent: str) -> None:
    """403 unless the caller may act as or read ``agent``."""
    key = key_of(request)
    if key is not None and not key.allows_agent(agent):
        raise _denied(f"key {key.key_id!r} may not use agent {agent!r}", "agent")


def check_agents(request: Request, agents: Iterable[str]) -> None:
    """403 unless the caller may read every one of ``agents`` (and, if limited, there is one)."""
    key = key_of(request)
    if key is None or key.every_agent:
        return
    named = list(agents)
    if not named or not all(key.allows_agent(agent) for agent in named):
        raise _denied(f"key {key.key_id!r} may not read this: it concerns other agents", None)


def check_model(request: Request, model: str | None) -> None:
    """403 unless the caller may ask for ``model`` (absent is ``auto``)."""
    key = key_of(request)
    wanted = model or AUTO
    if key is not None and not key.allows_model(wanted):
        raise _denied(f"key {key.key_id!r} may not use model {wanted!r}", "model")


def limit_routing(request: Request, chat: ChatRequest, config: Config) -> ChatRequest:
    """``chat`` limited to the caller's models: those it lists and its groups' members
    (``auto`` in the list only lets it send ``auto``); unchanged when it lists none."""
    key = key_of(request)
    if key is None or key.models is None:
        return chat
    named = [name for name in key.models if name != AUTO]
    if not named:
        return chat
    members = {member for name in named for member in config.groups.get(name, ())}
    return dataclasses.replace(chat, routable=frozenset({*named, *members}))


def visible_models(request: Request, names: Iterable[str]) -> list[str]:
    """``names`` the caller may ask for."""
    key = key_of(request)
    return [name for name in names if key is None or key.allows_model(name)]


def visible_stats(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """The stats body with only the agents the caller may read."""
    key = key_of(request)
    if key is None or key.every_agent:
        return body
    return {**body, "agents": [row for row in body["agents"] if key.allows_agent(row["agent"])]}


def needs_agent_filter(request: Request) -> bool:
    """Whether a listing across agents must name one (a key limited to some agents)."""
    key = key_of(request)
    return key is not None and not key.every_agent


def _denied(message: str, param: str | None) -> ProxyError:
    return ProxyError(403, "permission_denied", message, param=param)
