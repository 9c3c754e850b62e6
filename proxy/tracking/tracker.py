"""Tracker: the learner hook that writes stats/workflows/decision records, and the reads.

``hook_many`` runs after the learner applied a batch's rewards (off the response path) and
makes one backend write for the whole batch (one pipelined Redis round trip). Times (first/last
seen) are the requests' start times, so late writes do not reorder workflows. Quality, cost
and rewards are the learner's (proxy.pipeline.learning.Scored), never recomputed here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from policies.base import ALL_PROMPTS, Evidence, PosteriorStore
from proxy.config.settings import Config
from proxy.pipeline.learning import Scored
from proxy.pipeline.router import Router
from proxy.tracking import feedback, summaries, timeline
from proxy.tracking.backend import TrackingBackend
from proxy.tracking.posteriors import agent_views, prior_views
from proxy.tracking.records import DecisionRecord, track
from storage.errors import StoreUnavailable

DEFAULT_LIST_LIMIT = 50
EMPTY = Evidence()


class Tracker:
    """Stats, workflows and feedback over one backend, one store and the router."""

    def __init__(
        self,
        backend: TrackingBackend,
        *,
        config: Config,
        router: Router,
        store: PosteriorStore,
        clock: Callable[[], float],
    ) -> None:
        self.backend = backend
        self._config = config
        self._router = router
        self._store = store
        self._clock = clock

    async def hook_many(self, learned: list[Scored]) -> None:
        """Batch learner hook: every outcome's records in one backend write."""
        tracked = [timeline.stamped(track(scored, scored.outcome.started_at), scored) for scored in learned]
        await self.backend.write_many(tracked)

    async def stats(self, agent: str | None, context: str = ALL_PROMPTS) -> dict[str, Any]:
        """The ``GET /v1/stats`` body: every agent (or one) with per-model rows; each
        posterior is the one the agent's policy samples for prompts of ``context``."""
        agents = [agent] if agent is not None else await self.backend.agents()
        counts = await self.backend.stats(agents)
        rows = [await self._agent_stats(name, counts.get(name, {}), context) for name in agents]
        body: dict[str, Any] = {"object": "stats", "agents": rows}
        if context != ALL_PROMPTS:
            body["context"] = context
        return body

    async def _agent_stats(self, agent: str, counts: dict[str, float], context: str) -> dict[str, Any]:
        models = sorted(summaries.models_in(counts) | set(self._config.arms))
        try:
            views = await agent_views(self._store, self._router, [agent], context, models)
        except StoreUnavailable:
            views = prior_views(self._router, [agent], context, models)
        view = views[agent]
        return summaries.agent_stats(agent, counts, view.evidence, view.posterior)

    async def metrics_input(self) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
        """(raw stats counters per agent, posterior mean per agent and model) for /metrics.

        Means are of the posterior each agent's policy samples (agent level, every prompt
        context), from one store read; models with neither stats nor evidence are left out,
        and so are the means while the store is down."""
        agents = await self.backend.agents()
        counts = await self.backend.stats(agents)
        per_agent = {a: summaries.models_in(counts.get(a, {})) for a in agents}
        models = sorted(set().union(*per_agent.values()) | set(self._config.arms)) if agents else []
        try:
            views = await agent_views(self._store, self._router, agents, ALL_PROMPTS, models)
        except StoreUnavailable:
            return counts, {}
        means = {
            agent: {
                model: beta.mean
                for model, beta in view.posterior.items()
                if view.evidence.get(model, EMPTY).total > 0 or model in per_agent[agent]
            }
            for agent, view in views.items()
        }
        return counts, means

    async def timeline(self, agents: list[str], since: float) -> dict[str, timeline.Series]:
        """Per-minute counters per agent from ``since`` on (see proxy.tracking.timeline)."""
        return await self.backend.timeline(agents, since)

    async def recent_decisions(self, agent: str, limit: int) -> list[dict[str, Any]]:
        """The agent's newest decisions, newest first (timeline.recent_entry dicts)."""
        return await self.backend.recent_decisions(agent, limit)

    async def decisions(self, request_ids: list[str]) -> dict[str, DecisionRecord]:
        """The live decision records among ``request_ids`` (reads run concurrently)."""
        found = await asyncio.gather(*(self.backend.decision(rid) for rid in request_ids))
        return {rid: record for rid, record in zip(request_ids, found, strict=True) if record is not None}

    async def workflow(self, workflow_id: str) -> dict[str, Any] | None:
        """The workflow summary, or None if unknown or expired."""
        raw = await self.backend.workflow(workflow_id)
        return None if raw is None else summaries.workflow_summary(workflow_id, raw)

    async def workflows(self, agent: str | None, limit: int = DEFAULT_LIST_LIMIT) -> dict[str, Any]:
        """Recent workflows (of ``agent``), newest first."""
        rows = await self.backend.recent_workflows(agent, limit)
        data = [{"id": wf, "last_seen": at} for wf, at in rows]
        return {"object": "list", "agent": agent, "data": data}

    async def finish(self, workflow_id: str, outcome: str, score: float | None) -> dict[str, Any] | None:
        """Mark finished (with workflow feedback when scored); None if unknown."""
        if not await self.backend.finish(workflow_id, outcome, score, self._clock()):
            return None
        summary = await self.workflow(workflow_id)
        if summary is not None and score is not None:
            summary["feedback"] = await self.credit_workflow(workflow_id, score)
        return summary

    async def credit_request(self, request_id: str, score: float) -> dict[str, Any] | None:
        """Feedback on one decision; None if unknown or expired."""
        credit = await feedback.credit_request(self.backend, self._router, self._store, request_id, score)
        return None if credit is None else {"object": "feedback", **credit.payload()}

    async def credit_workflow(self, workflow_id: str, score: float) -> dict[str, Any] | None:
        """Feedback on every answered decision of a workflow; None if unknown."""
        found = await feedback.credit_workflow(self.backend, self._router, self._store, workflow_id, score)
        if found is None:
            return None
        credits, skipped = found
        return {
            "object": "feedback",
            "workflow_id": workflow_id,
            "score": score,
            "credited": len(credits),
            "decisions": [c.payload() for c in credits],
            "skipped": skipped,
        }
