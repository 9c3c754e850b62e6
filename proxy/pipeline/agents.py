"""Which agent a request is served as: a bound on the distinct agent names a client can create.

Agent names come from the ``X-Agent`` header and become Redis keys and in-memory tables, so
names not listed under ``agents`` (nor ``default``) are admitted per ``agents.allow_unknown``,
``agents.max_unknown`` and ``agents.unknown_overflow`` (see proxy.config.routing.UnknownAgents).
The bound is per process: the first ``max_unknown`` distinct unknown names since start.
"""

from __future__ import annotations

import dataclasses

from proxy.config.settings import Config
from proxy.pipeline.request import ChatRequest
from proxy.wire.errors import ProxyError
from proxy.wire.names import DEFAULT_AGENT


class AgentAdmission:
    """Admits unknown agents up to the configured cap; past it, shares or refuses."""

    def __init__(self, config: Config) -> None:
        self._rules = config.unknown_agents
        self._known = {*config.agents, DEFAULT_AGENT, self._rules.overflow_agent}
        self._admitted: set[str] = set()
        self.overflowed = 0
        """Requests served as the overflow agent or refused because the cap was reached."""

    @property
    def admitted(self) -> int:
        """Distinct unknown agents admitted under their own name."""
        return len(self._admitted)

    def agent_for(self, agent: str) -> str:
        """The agent ``agent``'s requests are served as; raises ProxyError 403/429 if refused."""
        if agent in self._known or agent in self._admitted:
            return agent
        rules = self._rules
        if not rules.allow:
            raise ProxyError(403, "unknown_agent", f"agent {agent!r} is not configured", param="X-Agent")
        if len(self._admitted) < rules.max_distinct:
            self._admitted.add(agent)
            return agent
        self.overflowed += 1
        if rules.overflow == "refuse":
            cap = rules.max_distinct
            message = f"too many distinct agents (agents.max_unknown = {cap}); {agent!r} refused"
            raise ProxyError(429, "too_many_agents", message, param="X-Agent")
        return rules.overflow_agent

    def admit(self, request: ChatRequest) -> ChatRequest:
        """``request`` as served: its agent replaced by the overflow agent past the cap."""
        agent = self.agent_for(request.agent)
        return request if agent == request.agent else dataclasses.replace(request, agent=agent)
