"""ModelManager: the router in your own process, without an HTTP hop.

The same Runtime the proxy app serves from (proxy.runtime.build): the same pipeline
(``proxy.pipeline.flow.handle_chat``), policy, store and tracking. Only non-streaming chat
completions; every call is routed, learned from and tracked exactly as ``POST
/v1/chat/completions`` with ``X-Agent``/``X-Workflow`` would be.

    async with ModelManager.from_config("config.yaml") as mm:
        answer = await mm.generate_response(agent="planner", messages=[...])
        await mm.feedback(answer.request_id, 0.9)

``SyncModelManager`` runs one in a private event loop thread, for scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import orjson
from starlette.responses import Response

from policies.base import ALL_PROMPTS
from proxy.config.discovery import expand_wildcards
from proxy.config.settings import Config, load_config
from proxy.forwarding.base import Upstream
from proxy.pipeline.flow import handle_chat
from proxy.pipeline.headers import MODEL_HEADER
from proxy.pipeline.request import AGENT_HEADER, PIN_HEADER, WORKFLOW_HEADER, ChatRequest, chat_request
from proxy.runtime.build import Runtime, open_runtime
from proxy.runtime.reload import Reloader, ReloadReport
from proxy.runtime.state import State
from proxy.tracking import inputs
from proxy.tracking.tracker import Tracker
from proxy.wire.errors import ProxyError
from proxy.wire.names import DEFAULT_AGENT

T = TypeVar("T")


class ModelManagerError(Exception):
    """A call the router could not answer: the OpenAI-shaped error the proxy would return."""

    def __init__(self, status: int, type: str, message: str, *, code: str, param: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.type, self.message, self.code, self.param = status, type, message, code, param

    @classmethod
    def of(cls, error: ProxyError) -> ModelManagerError:
        return cls(error.status, error.type, error.message, code=error.code, param=error.param)

    @property
    def error(self) -> dict[str, object]:
        """``{"error": {"message", "type", "param", "code"}}``."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True, slots=True)
class ModelResponse:
    """One answer: its text (None for a tool call only), the model that gave it, the request
    id (for ``feedback``), the usage and the raw chat completion."""

    text: str | None
    model: str
    request_id: str
    usage: Mapping[str, Any]
    completion: Mapping[str, Any] = field(repr=False)


class ModelManager:
    """The router in process; use as ``async with`` (it opens and closes the storage).

    With ``settle`` (the default) ``generate_response`` returns once its outcome is learned
    from and tracked, so stats and workflow summaries read right after it include the call;
    ``settle=False`` returns as soon as the answer is there (learning follows, as in the proxy).
    """

    def __init__(
        self,
        config: Config,
        *,
        state: State | None = None,
        upstream: Upstream | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        settle: bool = True,
    ) -> None:
        self.config = config
        self._settle = settle
        self._opener = contextlib.AsyncExitStack()
        self._options: dict[str, Any] = {"state": state, "upstream": upstream, "rng": rng, "clock": clock}
        self._runtime: Runtime | None = None
        self._path: Path | None = None
        self._reloader: Reloader | None = None

    @classmethod
    def from_config(cls, path: str | Path, **options: Any) -> ModelManager:
        """A manager for the config file at ``path`` (ConfigError names a bad key); ``reload``
        re-reads that file."""
        manager = cls(load_config(path, prepare=expand_wildcards), **options)
        manager._path = Path(path)
        return manager

    async def reload(self) -> ReloadReport:
        """Re-read the config file (see proxy.runtime.reload): the next calls route over it; a file
        that does not validate keeps the running config (``report.error`` says why)."""
        if self._path is None:
            raise RuntimeError("reload needs a ModelManager made by from_config(path)")
        if self._reloader is None:
            self._reloader = Reloader(
                self.runtime, partial(load_config, self._path, prepare=expand_wildcards)
            )
        return await self._reloader.reload()

    async def __aenter__(self) -> Self:
        self._runtime = await self._opener.enter_async_context(open_runtime(self.config, **self._options))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._runtime, self._reloader = None, None
        await self._opener.aclose()

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("ModelManager is not open: use `async with ModelManager(...) as mm`")
        return self._runtime

    async def generate_response(
        self,
        agent: str = DEFAULT_AGENT,
        messages: list[dict[str, Any]] | None = None,
        workflow_id: str | None = None,
        *,
        model: str | None = None,
        pin: bool = False,
        **params: Any,
    ) -> ModelResponse:
        """Route ``messages`` for ``agent`` (within ``workflow_id``) like the proxy would;
        ``model`` is a model, group or ``auto``; ``params`` go into the chat body
        (temperature, tools, response_format, ...). Raises ModelManagerError."""
        if params.get("stream"):
            raise ModelManagerError(
                400, "invalid_request_error", "streaming is HTTP-only", code="invalid_request", param="stream"
            )
        body: dict[str, Any] = {"messages": messages, **params}
        if model is not None:
            body["model"] = model
        request = self._request(body, agent=agent, workflow_id=workflow_id, pin=pin)
        services = self.runtime.services
        services.counters.requests += 1
        reply = await handle_chat(services, request)
        if self._settle:
            await services.learner.settled()
        if not isinstance(reply, Response):  # a stream; not requested above
            raise ModelManagerError(500, "server_error", "unexpected stream", code="internal_error")
        payload = orjson.loads(bytes(reply.body))
        if reply.status_code != 200:
            raise _error_of(reply.status_code, payload)
        return _response(payload, reply.headers.get(MODEL_HEADER, ""), request.request_id)

    async def track_workflow_usage(
        self, workflow_id: str, agent: str, messages: list[dict[str, Any]], **params: Any
    ) -> ModelResponse:
        """``generate_response`` within ``workflow_id``: every routed call is the workflow's
        usage (calls made outside the router are not recorded)."""
        return await self.generate_response(agent, messages, workflow_id, **params)

    def start_workflow_tracking(self, workflow_id: str) -> str:
        """Validate ``workflow_id``; the workflow is recorded from its first call on."""
        return _checked(inputs.check_workflow, workflow_id)

    async def get_agent_performance_stats(
        self, agent: str | None = None, context: str = ALL_PROMPTS
    ) -> dict[str, Any]:
        """``GET /v1/stats``'s body: per agent and model counters and posteriors."""
        return await self._tracker.stats(_checked(inputs.check_agent, agent), context)

    async def workflow_summary(self, workflow_id: str) -> dict[str, Any] | None:
        """``GET /v1/workflows/{id}``'s body, or None if unknown or expired."""
        return await self._tracker.workflow(_checked(inputs.check_workflow, workflow_id))

    async def finish_workflow(
        self, workflow_id: str, outcome: str = "success", score: float | None = None
    ) -> dict[str, Any]:
        """Mark the workflow finished (crediting its decisions when scored)."""
        body = {"outcome": outcome, **({} if score is None else {"score": score})}
        parsed_outcome, parsed_score = _checked(inputs.parse_finish, orjson.dumps(body))
        summary = await self._tracker.finish(
            _checked(inputs.check_workflow, workflow_id), parsed_outcome, parsed_score
        )
        return _found(summary, f"workflow {workflow_id!r}")

    async def feedback(self, request_id: str, score: float) -> dict[str, Any]:
        """Explicit feedback (0..1) on one answered request; ``POST /v1/feedback``'s body."""
        parsed = _checked(inputs.parse_feedback, orjson.dumps({"request_id": request_id, "score": score}))
        assert parsed.request_id is not None
        credit = await self._tracker.credit_request(parsed.request_id, parsed.score)
        return _found(credit, f"request {request_id!r} (no answered decision recorded)")

    @property
    def _tracker(self) -> Tracker:
        return self.runtime.tracker

    def _request(
        self, body: dict[str, Any], *, agent: str, workflow_id: str | None, pin: bool
    ) -> ChatRequest:
        headers = {AGENT_HEADER: agent, PIN_HEADER: "true" if pin else "false"}
        if workflow_id is not None:
            headers[WORKFLOW_HEADER] = workflow_id
        return _checked(chat_request, body, headers)


def _checked(parse: Callable[..., T], *args: Any) -> T:
    try:
        return parse(*args)
    except ProxyError as error:
        raise ModelManagerError.of(error) from None


def _found(result: dict[str, Any] | None, what: str) -> dict[str, Any]:
    if result is None:
        raise ModelManagerError.of(inputs.not_found(what))
    return result


def _error_of(status: int, payload: Any) -> ModelManagerError:
    error = payload.get("error", {}) if isinstance(payload, dict) else {}
    return ModelManagerError(
        status,
        str(error.get("type", "api_error")),
        str(error.get("message", "")),
        code=str(error.get("code", "")),
        param=error.get("param"),
    )


def _response(payload: dict[str, Any], model: str, request_id: str) -> ModelResponse:
    choices = payload.get("choices") or [{}]
    message = choices[0].get("message") or {}
    return ModelResponse(
        text=message.get("content"),
        model=model,
        request_id=request_id,
        usage=payload.get("usage") or {},
        completion=payload,
    )


class SyncModelManager:
    """A ModelManager for scripts: the same methods, blocking, on a private event loop thread."""

    def __init__(self, manager: ModelManager) -> None:
        self._manager = manager
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="model-manager", daemon=True)

    @classmethod
    def from_config(cls, path: str | Path, **options: Any) -> SyncModelManager:
        return cls(ModelManager.from_config(path, **options))

    def __enter__(self) -> Self:
        self._thread.start()
        self._run(self._manager.__aenter__())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._run(self._manager.__aexit__(exc_type, exc, tb))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def generate_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return self._run(self._manager.generate_response(*args, **kwargs))

    def track_workflow_usage(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return self._run(self._manager.track_workflow_usage(*args, **kwargs))

    def start_workflow_tracking(self, workflow_id: str) -> str:
        return self._manager.start_workflow_tracking(workflow_id)

    def get_agent_performance_stats(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._run(self._manager.get_agent_performance_stats(*args, **kwargs))

    def workflow_summary(self, workflow_id: str) -> dict[str, Any] | None:
        return self._run(self._manager.workflow_summary(workflow_id))

    def finish_workflow(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._run(self._manager.finish_workflow(*args, **kwargs))

    def feedback(self, request_id: str, score: float) -> dict[str, Any]:
        return self._run(self._manager.feedback(request_id, score))

    def reload(self) -> ReloadReport:
        return self._run(self._manager.reload())

    def _run(self, call: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await call

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result()
