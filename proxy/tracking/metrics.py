"""Prometheus text exposition (format 0.0.4) of the router's counters, for ``GET /metrics``.

Per (agent, model), from the tracking store (shared by every process with Redis; this
process's with the embedded store), the same counters as ``GET /v1/stats``:

- ``model_manager_calls_total``, ``_successes_total``, ``_failures_total{kind}``,
  ``_fallbacks_total``, ``_cancelled_total``, ``_decisions_total`` (first choices),
  ``_tokens_total{direction}``, ``_cost_usd_total``, ``_quality_sum`` / ``_quality_count``
- ``model_manager_latency_seconds`` and ``_ttft_seconds``: histograms of successful
  attempts, buckets proxy.tracking.records.BUCKETS_S
- ``model_manager_posterior_mean``: mean of the posterior the agent's policy samples from
  (agent level, every prompt context)

Of this process only: ``model_manager_process_*`` (requests served and the write-path
counters of ``GET /ready``, unlabelled), ``model_manager_process_decisions_total{agent, kind}``
(finished requests by decision kind, proxy.pipeline.kinds; ``process_`` keeps it apart from the
shared per-model ``decisions_total``) and ``model_manager_latency_overhead_seconds``: a
histogram of the time each request spent outside upstream calls (the
``x-model-manager-overhead-ms`` header), buckets OVERHEAD_BUCKETS_S.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from proxy.pipeline.request_metrics import OVERHEAD_BUCKETS_S, RequestMetrics
from proxy.tracking.records import BUCKETS_S
from proxy.tracking.summaries import split_counts

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "model_manager_"

_COUNTERS = (
    ("calls", "calls_total", "Attempts sent to the model."),
    ("successes", "successes_total", "Attempts the model answered."),
    ("fallbacks", "fallbacks_total", "Attempts that were not the request's first."),
    ("cancelled", "cancelled_total", "Requests the client gave up while the model was tried."),
    ("decisions", "decisions_total", "Requests where the policy chose the model first."),
    ("cost", "cost_usd_total", "Cost of the answers in USD, where known."),
    ("quality_sum", "quality_sum", "Sum of the heuristic quality of answers."),
    ("quality_n", "quality_count", "Answers whose quality was assessed."),
)
_HISTOGRAMS = (
    ("lat", "latency_seconds", "Latency of successful attempts."),
    ("ttft", "ttft_seconds", "Time to first token of successful streamed attempts."),
)

Counts = Mapping[str, float]


class Exposition:
    """Metric families in the order first declared; each with its HELP and TYPE once."""

    def __init__(self) -> None:
        self._families: dict[str, tuple[str, str, list[str]]] = {}

    def declare(self, name: str, kind: str, help_text: str) -> None:
        """The family ``name`` of type ``kind`` (counter, gauge, histogram); idempotent."""
        self._families.setdefault(name, (kind, help_text, []))

    def sample(self, name: str, value: float, labels: Mapping[str, str], suffix: str = "") -> None:
        """One line ``<name><suffix>{labels} value`` of the declared family ``name``."""
        self._families[name][2].append(f"{PREFIX}{name}{suffix}{_labels(labels)} {_number(value)}")

    def text(self) -> str:
        out: list[str] = []
        for name, (kind, help_text, lines) in self._families.items():
            out += [f"# HELP {PREFIX}{name} {help_text}", f"# TYPE {PREFIX}{name} {kind}", *lines]
        return "\n".join(out) + "\n"


def render(
    agent_counts: Mapping[str, Counts],
    posterior_means: Mapping[str, Mapping[str, float]],
    process: Mapping[str, int],
    local: RequestMetrics | None = None,
) -> str:
    """The exposition text: per (agent, model) families, then this process's counters
    (and its request metrics, ``local``)."""
    out = Exposition()
    for agent in sorted(agent_counts):
        for (model,), metrics in sorted(split_counts(agent_counts[agent], 2).items()):
            _model_families(out, metrics, {"agent": agent, "model": model})
    out.declare("posterior_mean", "gauge", "Mean of the posterior the agent's policy samples from.")
    for agent in sorted(posterior_means):
        for model, mean in sorted(posterior_means[agent].items()):
            out.sample("posterior_mean", mean, {"agent": agent, "model": model})
    for name, value in sorted(process.items()):
        family = f"process_{name}"
        out.declare(family, "counter" if name.endswith("_total") else "gauge",
                    f"This process: {name.replace('_', ' ')}.")
        out.sample(family, value, {})
    if local is not None:
        _request_metrics(out, local)
    return out.text()


def _request_metrics(out: Exposition, local: RequestMetrics) -> None:
    out.declare("process_decisions_total", "counter", "This process: finished requests by decision kind.")
    for (agent, kind), count in sorted(local.decisions.items()):
        out.sample("process_decisions_total", count, {"agent": agent, "kind": kind})
    name = "latency_overhead_seconds"
    out.declare(name, "histogram", "This process: time each request spent outside upstream calls.")
    running = 0
    for index, edge in enumerate((*OVERHEAD_BUCKETS_S, float("inf"))):
        running += local.overhead_buckets[index]
        out.sample(name, running, {"le": _le(edge)}, suffix="_bucket")
    out.sample(name, local.overhead_sum_s, {}, suffix="_sum")
    out.sample(name, running, {}, suffix="_count")


def _model_families(out: Exposition, metrics: Counts, labels: Mapping[str, str]) -> None:
    for key, name, help_text in _COUNTERS:
        out.declare(name, "counter" if name.endswith("_total") else "gauge", help_text)
        out.sample(name, metrics.get(key, 0.0), labels)
    out.declare("failures_total", "counter", "Failed attempts, by kind.")
    for kind, value in _failure_kinds(metrics):
        out.sample("failures_total", value, {**labels, "kind": kind})
    out.declare("tokens_total", "counter", "Tokens of the answers.")
    for direction in ("in", "out"):
        tokens = metrics.get(f"tokens_{direction}", 0.0)
        out.sample("tokens_total", tokens, {**labels, "direction": direction})
    for prefix, name, help_text in _HISTOGRAMS:
        out.declare(name, "histogram", help_text)
        _histogram(out, name, metrics, prefix, labels)


def _failure_kinds(metrics: Counts) -> Iterable[tuple[str, float]]:
    return sorted((key[5:], value) for key, value in metrics.items() if key.startswith("fail."))


def _histogram(out: Exposition, name: str, metrics: Counts, prefix: str, labels: Mapping[str, str]) -> None:
    """Cumulative ``_bucket`` lines (``le`` = BUCKETS_S, then +Inf), ``_sum`` and ``_count``."""
    running = 0.0
    for index, edge in enumerate((*BUCKETS_S, float("inf"))):
        running += metrics.get(f"{prefix}.{index}", 0.0)
        out.sample(name, running, {**labels, "le": _le(edge)}, suffix="_bucket")
    out.sample(name, metrics.get(f"{prefix}_sum", 0.0), labels, suffix="_sum")
    out.sample(name, running, labels, suffix="_count")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _le(edge: float) -> str:
    """A bucket edge as Prometheus clients write it: ``0.025``, ``60.0``, ``+Inf``."""
    return "+Inf" if edge == float("inf") else repr(float(edge))


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))
