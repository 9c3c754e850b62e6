"""What stats and metrics report as the posterior: the Beta the agent's policy samples from.

One store read covers every agent asked about: the tables each agent's policy reads for
``context`` (pooled, agent, agent+context) and the agent's own table (whose evidence says
which models the agent has learnt about).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from policies.base import Beta, DecisionRequest, Evidence, PosteriorStore, Snapshot, Table
from proxy.pipeline.router import Router


@dataclass(frozen=True, slots=True)
class AgentView:
    """One agent's posterior per model (as its policy decides) and its own table's evidence."""

    posterior: dict[str, Beta]
    evidence: dict[str, Evidence]


async def agent_views(
    store: PosteriorStore, router: Router, agents: Sequence[str], context: str, models: Sequence[str]
) -> dict[str, AgentView]:
    """Per agent: the posterior of every model in ``models`` for prompts of ``context``.

    Raises what ``store.load`` raises (StoreUnavailable while the store is down)."""
    requests = [DecisionRequest(agent, context, tuple(models)) for agent in agents]
    tables = _tables(router, requests)
    snapshot = await store.load(tables, models) if tables and models else {}
    return {request.agent: _view(router, request, snapshot) for request in requests}


def prior_views(
    router: Router, agents: Sequence[str], context: str, models: Sequence[str]
) -> dict[str, AgentView]:
    """``agent_views`` without evidence: each policy's posterior from its priors alone."""
    return {agent: _view(router, DecisionRequest(agent, context, tuple(models)), {}) for agent in agents}


def _view(router: Router, request: DecisionRequest, snapshot: Snapshot) -> AgentView:
    posterior = router.policy_for(request.agent).posterior(request, snapshot)
    return AgentView(posterior, dict(snapshot.get(Table(request.agent), {})))


def _tables(router: Router, requests: Iterable[DecisionRequest]) -> list[Table]:
    found: dict[Table, None] = {}
    for request in requests:
        found.update(dict.fromkeys(router.policy_for(request.agent).tables(request)))
        found[Table(request.agent)] = None
    return list(found)
