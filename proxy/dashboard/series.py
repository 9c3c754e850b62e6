"""Per-minute counters (proxy.tracking.timeline) -> chart columns: one x per minute, gaps as 0."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from proxy.tracking.records import SEP
from proxy.tracking.timeline import MINUTE_S, Series

Chart = dict[str, object]
"""``{"id", "title", "x": [epoch s], "series": [{"label", "values"}], "time": bool}``."""


def merged(per_agent: Iterable[Series]) -> Series:
    """Several agents' series summed minute by minute."""
    out: Series = {}
    for series in per_agent:
        for minute, counts in series.items():
            bucket = out.setdefault(minute, {})
            for name, value in counts.items():
                bucket[name] = bucket.get(name, 0.0) + value
    return out


MIN_SPAN = 30
"""Minutes charted at least (when the window is that long), so new traffic is not a lone dot."""


def minutes(series: Series, first: int, last: int) -> list[int]:
    """Every minute from the first with data, or MIN_SPAN minutes back if later, to ``last``;
    never before ``first``."""
    start = max(min(min(series, default=last), last - MIN_SPAN + 1), first)
    return list(range(start, last + 1))


def metric(series: Series, axis: list[int], name: str) -> list[float]:
    """``name`` summed over models for each minute of ``axis``."""
    return [_total(series.get(m, {}), name) for m in axis]


def per_model(series: Series, axis: list[int], name: str) -> dict[str, list[float]]:
    """``name`` of each model for each minute of ``axis``."""
    models = sorted({f.split(SEP, 1)[0] for counts in series.values() for f in counts})
    return {model: [series.get(m, {}).get(f"{model}{SEP}{name}", 0.0) for m in axis] for model in models}


def shares(series: Series, axis: list[int]) -> dict[str, list[float | None]]:
    """Each model's share of the minute's first choices (None in minutes without requests)."""
    decisions = per_model(series, axis, "decisions")
    totals = [sum(column) for column in zip(*decisions.values(), strict=True)] if decisions else []
    return {
        model: [round(v / t, 4) if t else None for v, t in zip(values, totals, strict=True)]
        for model, values in decisions.items()
        if any(values)
    }


def failure_kinds(series: Series) -> dict[str, float]:
    """Failures by kind over the whole series."""
    kinds: dict[str, float] = {}
    for counts in series.values():
        for name, value in counts.items():
            kind = name.rpartition(SEP)[2]
            if kind.startswith("fail."):
                kinds[kind[5:]] = kinds.get(kind[5:], 0.0) + value
    return kinds


def context_choices(series: Series) -> dict[str, dict[str, float]]:
    """First choices per prompt context and model over the whole series."""
    out: dict[str, dict[str, float]] = {}
    for counts in series.values():
        for name, value in counts.items():
            model, _, metric_name = name.partition(SEP)
            if metric_name.startswith("ctx."):
                row = out.setdefault(metric_name[4:], {})
                row[model] = row.get(model, 0.0) + value
    return out


def chart(chart_id: str, title: str, axis: list[int], columns: Mapping[str, Sequence[float | None]]) -> Chart:
    """A time chart of ``columns`` over ``axis`` (minutes, drawn as epoch seconds)."""
    return {
        "id": chart_id,
        "title": title,
        "time": True,
        "x": [m * MINUTE_S for m in axis],
        "series": [{"label": label, "values": values} for label, values in columns.items()],
    }


def _total(counts: Mapping[str, float], name: str) -> float:
    suffix = SEP + name
    return sum(v for f, v in counts.items() if f.endswith(suffix))
