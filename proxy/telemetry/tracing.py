"""Emitting span plans through the OpenTelemetry SDK: imported only when telemetry is enabled.

``Tracing`` owns its own TracerProvider (the global one is left alone) exporting over
OTLP/HTTP in batches, or to a given exporter span by span (tests use the SDK's
InMemorySpanExporter). ``hook`` is a Learner outcome hook: spans are built after the
response, off the request path, from the frozen outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from proxy.config.models import Arm
from proxy.config.telemetry import TelemetrySettings
from proxy.pipeline.learning import Scored
from proxy.telemetry.spans import SpanPlan, request_span

if TYPE_CHECKING:
    from opentelemetry.context import Context

SCOPE = "model_manager"


class Tracing:
    """One span tree per scored outcome, exported as configured."""

    def __init__(
        self, settings: TelemetrySettings, arms: Mapping[str, Arm], exporter: SpanExporter | None = None
    ) -> None:
        self._arms = arms
        self._provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
        if exporter is None:
            self._provider.add_span_processor(BatchSpanProcessor(_otlp(settings)))
        else:
            self._provider.add_span_processor(SimpleSpanProcessor(exporter))
        self._tracer = self._provider.get_tracer(SCOPE)

    def retarget(self, arms: Mapping[str, Arm]) -> None:
        """Name providers from ``arms`` from now on (a config reload)."""
        self._arms = arms

    async def hook(self, scored: Scored) -> None:
        """Emit the outcome's request span and its attempt spans."""
        self.emit(request_span(scored, self._arms))

    def emit(self, plan: SpanPlan, context: Context | None = None) -> None:
        span = self._tracer.start_span(
            plan.name,
            context=context,
            kind=SpanKind.CLIENT if context is not None else SpanKind.SERVER,
            attributes=plan.attributes,
            start_time=plan.start_ns,
        )
        if plan.error is not None:
            span.set_status(StatusCode.ERROR, plan.error)
        inner = trace.set_span_in_context(span)
        for child in plan.children:
            self.emit(child, inner)
        span.end(end_time=plan.end_ns)

    def shutdown(self) -> None:
        """Flush pending spans and stop exporting."""
        self._provider.shutdown()


def _otlp(settings: TelemetrySettings) -> SpanExporter:
    return OTLPSpanExporter(endpoint=settings.otlp_endpoint)
