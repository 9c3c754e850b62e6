"""Page sections as HTML fragments (section id -> HTML): rendered once on the server for the
first paint and again for every refresh (the JSON endpoints return the same fragments)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from proxy.dashboard import html
from proxy.dashboard.html import Cell

Sections = dict[str, str]
NO_TRAFFIC = "No traffic yet: send requests through the proxy with an X-Agent header."


def overview(data: Mapping[str, Any]) -> Sections:
    return {
        "totals": totals(data["totals"]),
        "agents": agents(data["agents"]),
        "models": models(data["models"]),
    }


def totals(t: Mapping[str, Any]) -> str:
    kinds = ", ".join(f"{html.text(k)} {v:,}" for k, v in t["failures_by_kind"].items()) or "none"
    return html.cards([
        ("requests", "Requests", html.integer(t["requests"])),
        ("successes", "Answered", html.integer(t["successes"])),
        ("success_rate", "Attempts that succeeded", html.percent(t["success_rate"])),
        ("fallbacks", "Fallbacks", html.integer(t["fallbacks"])),
        ("failures", "Failed attempts", f'{html.integer(t["failures"])}<small>{kinds}</small>'),
        ("cost_usd", "Cost", html.usd(t["cost_usd"])),
        ("tokens", "Tokens in / out", f'{html.integer(t["tokens_in"])} / {html.integer(t["tokens_out"])}'),
    ])


def agents(rows: Sequence[Mapping[str, Any]]) -> str:
    headers = ("Agent", "Requests", "Success", "Fallbacks", "Failures", "Cost", "Most chosen", "Best mean")
    return html.table(headers, [(r["agent"], _agent_cells(r)) for r in rows], NO_TRAFFIC)


def _agent_cells(r: Mapping[str, Any]) -> list[Cell]:
    top = "\u2013"
    if r["top_model"] is not None:
        top = f'{html.text(r["top_model"])} ({html.percent(r["top_share"])})'
    return [
        ("agent", html.link(f'/dashboard/agents/{html.path_part(r["agent"])}', r["agent"])),
        ("requests", html.integer(r["requests"])),
        ("success_rate", html.percent(r["success_rate"])),
        ("fallbacks", html.integer(r["fallbacks"])),
        ("failures", html.integer(r["failures"])),
        ("cost_usd", html.usd(r["cost_usd"])),
        ("top_model", top),
        ("best_posterior", html.text(r["best_posterior"])),
    ]


def models(rows: Sequence[Mapping[str, Any]]) -> str:
    cells = [
        (r["model"], [
            ("model", html.text(r["model"])),
            ("state", html.badge(r["state"])),
            ("rpm", html.integer(r["rpm"])),
            ("tpm", html.integer(r["tpm"])),
            ("reason", html.text(r["reason"] or None)),
        ])
        for r in rows
    ]
    return html.table(("Model", "State (this process)", "rpm limit", "tpm limit", "Why"), cells, "No models.")


def agent(data: Mapping[str, Any]) -> Sections:
    return {
        "agent-models": agent_models(data["stats"]),
        "posteriors": posteriors(data["posteriors"]),
        "contexts": contexts(data["context_choices"]),
        "recent": recent(data["recent"]),
    }


def agent_models(stats: Mapping[str, Any]) -> str:
    headers = (
        "Model", "First choices", "Share", "Calls", "Success", "Failures", "Fallbacks", "Quality",
        "Latency mean / p50 / p95", "TTFT mean / p50 / p95", "Tokens in / out", "Cost", "Posterior mean",
    )
    return html.table(headers, [(r["model"], _model_cells(r)) for r in stats["models"]], NO_TRAFFIC)


def _model_cells(r: Mapping[str, Any]) -> list[Cell]:
    calls, kinds = r["calls"], r["failures_by_kind"]
    why = ", ".join(f"{html.text(k)} {v}" for k, v in kinds.items())
    return [
        ("model", html.text(r["model"])),
        ("decisions", html.integer(r["decisions"])),
        ("selection_share", html.percent(r["selection_share"])),
        ("calls", html.integer(calls)),
        ("success_rate", html.percent(r["successes"] / calls if calls else None)),
        ("failures", html.integer(r["failures"]) + (f"<small>{why}</small>" if why else "")),
        ("fallbacks", html.integer(r["fallbacks"])),
        ("quality_mean", html.number(r["quality_mean"])),
        ("latency", _distribution(r["latency_s"])),
        ("ttft", _distribution(r["ttft_s"])),
        ("tokens", f'{html.integer(r["tokens_in"])} / {html.integer(r["tokens_out"])}'),
        ("cost_usd", html.usd(r["cost_usd"])),
        ("posterior_mean", html.number(r["posterior"]["mean"])),
    ]


def _distribution(d: Mapping[str, float | None]) -> str:
    return " / ".join(html.seconds(d[k]) for k in ("mean", "p50", "p95"))


def posteriors(tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    if not tables:
        return '<p class="empty">Posterior store unavailable.</p>'
    parts = []
    for context, rows in tables.items():
        title = "All prompts" if context == "" else f"Context {html.text(context)}"
        parts.append(f'<figure class="forest" data-context="{html.text(context)}"><figcaption>{title}'
                     f"</figcaption>{forest(rows)}</figure>")
    return "".join(parts)


def forest(rows: Sequence[Mapping[str, Any]]) -> str:
    """Inline SVG: each model's 90% interval as a bar and its mean as a dot, on [0, 1]."""
    label_w, plot_w, row_h = 150, 300, 20
    height = row_h * len(rows) + 20
    items = []
    for i, r in enumerate(rows):
        y = 10 + i * row_h + row_h / 2
        x0, x1, xm = (label_w + plot_w * r[k] for k in ("low", "high", "mean"))
        tip = f'{r["model"]}: mean {r["mean"]:.3f}, 90% [{r["low"]:.3f}, {r["high"]:.3f}], ' \
              f'Beta({r["alpha"]:.2f}, {r["beta"]:.2f})'
        items.append(
            f'<g data-model="{html.text(r["model"])}"><title>{html.text(tip)}</title>'
            f'<text x="{label_w - 6}" y="{y + 4:.1f}" text-anchor="end">{html.text(r["model"])}</text>'
            f'<line x1="{x0:.1f}" x2="{x1:.1f}" y1="{y:.1f}" y2="{y:.1f}" class="ci"/>'
            f'<circle cx="{xm:.1f}" cy="{y:.1f}" r="4" class="mean"/></g>'
        )
    ticks = "".join(
        f'<text x="{label_w + plot_w * t:.0f}" y="{height - 2}" text-anchor="middle" '
        f'class="tick">{t:g}</text>'
        for t in (0, 0.25, 0.5, 0.75, 1)
    )
    return (f'<svg viewBox="0 0 {label_w + plot_w + 20} {height}" width="{label_w + plot_w + 20}" '
            f'height="{height}" role="img">{"".join(items)}{ticks}</svg>')


def contexts(choices: Mapping[str, Mapping[str, float]]) -> str:
    model_names = sorted({m for row in choices.values() for m in row})
    rows = []
    for context, counts in sorted(choices.items()):
        total = sum(counts.values())
        cells = [("context", html.text(context or "(none)"))]
        cells += [(m, f"{html.integer(counts.get(m, 0))} ({html.percent(counts.get(m, 0) / total)})")
                  for m in model_names]
        rows.append((context, cells))
    return html.table(("Context", *model_names), rows, "No requests in the charted window.")


def recent(entries: Sequence[Mapping[str, Any]]) -> str:
    headers = ("Time", "Request", "Context", "First choice", "How", "Propensity", "Attempts", "Status",
               "Reward", "Feedback", "Workflow")
    return html.table(headers, [(e["id"], _recent_cells(e)) for e in entries], "No decisions recorded yet.")


def _recent_cells(e: Mapping[str, Any]) -> list[Cell]:
    workflow = e.get("workflow")
    return [
        ("at", html.clock(e.get("at"))),
        ("id", f'<code>{html.text(e["id"])}</code>'),
        ("context", html.text(e.get("context") or "(none)")),
        ("choice", html.text(e.get("choice"))),
        ("how", _how(e)),
        ("propensity", html.number(e.get("propensity"))),
        ("attempts", attempts(e.get("attempts", []))),
        ("status", html.badge(str(e.get("status")))),
        ("reward", html.number(e.get("reward") if e.get("applied") is None else e.get("applied"))),
        ("feedback", html.number(e.get("feedback"))),
        ("workflow", _workflow_link(workflow)),
    ]


def _workflow_link(workflow: str | None) -> str:
    if not workflow:
        return "\u2013"
    return html.link(f"/dashboard/workflows/{html.path_part(workflow)}", workflow)


def _how(e: Mapping[str, Any]) -> str:
    if e.get("kind"):
        return str(e["kind"])
    tags = ["explored" if e.get("explored") else "sampled"]
    if len(e.get("attempts", [])) > 1:
        tags.append("fallback")
    if len(e.get("candidates", [])) == 1:
        tags.append("single candidate")
    return ", ".join(tags)


def attempts(items: Sequence[Sequence[str]]) -> str:
    """``model (failure) -> model``."""
    parts = [html.text(m) + (f' <span class="fail">({html.text(f)})</span>' if f else "") for m, f in items]
    return " \u2192 ".join(parts) or "\u2013"


def workflows(data: Mapping[str, Any]) -> Sections:
    headers = ("Workflow", "Agents", "Requests", "Statuses", "Calls", "Fallbacks", "Failures", "Cost",
               "Tokens in / out", "Last seen", "Outcome", "Score")
    rows = [(w["id"], _workflow_cells(w)) for w in data["workflows"]]
    return {"workflow-list": html.table(headers, rows, "No workflows match (requests carry X-Workflow).")}


def _workflow_cells(w: Mapping[str, Any]) -> list[Cell]:
    t = w["totals"]
    return [
        ("id", html.link(f'/dashboard/workflows/{html.path_part(w["id"])}', w["id"])),
        ("agents", html.text(", ".join(w["agents"]))),
        ("requests", html.integer(w["requests"])),
        ("statuses", _statuses(w["statuses"])),
        ("calls", html.integer(t["calls"])),
        ("fallbacks", html.integer(t["fallbacks"])),
        ("failures", html.integer(t["failures"])),
        ("cost_usd", html.usd(t["cost_usd"])),
        ("tokens", f'{html.integer(t["tokens_in"])} / {html.integer(t["tokens_out"])}'),
        ("last_seen", html.clock(w["last_seen"])),
        ("outcome", html.badge(w["outcome"]) if w["finished"] else html.badge("open")),
        ("score", html.number(w["score"])),
    ]


def _statuses(statuses: Mapping[str, int]) -> str:
    return ", ".join(f"{html.text(k)} {v}" for k, v in statuses.items()) or "\u2013"


def workflow(data: Mapping[str, Any]) -> Sections:
    w = data["workflow"]
    return {"workflow-summary": _workflow_summary(w), "workflow-usage": _usage(w["usage"]),
            "workflow-calls": _calls(data["calls"])}


def _workflow_summary(w: Mapping[str, Any]) -> str:
    t = w["totals"]
    return html.cards([
        ("requests", "Requests", html.integer(w["requests"])),
        ("statuses", "Statuses", _statuses(w["statuses"])),
        ("outcome", "Outcome", html.badge(w["outcome"]) if w["finished"] else html.badge("open")),
        ("score", "Score", html.number(w["score"])),
        ("calls", "Calls / fallbacks / failures",
         f'{html.integer(t["calls"])} / {html.integer(t["fallbacks"])} / {html.integer(t["failures"])}'),
        ("cost_usd", "Cost", html.usd(t["cost_usd"])),
        ("tokens", "Tokens in / out", f'{html.integer(t["tokens_in"])} / {html.integer(t["tokens_out"])}'),
        ("span", "First / last seen", f'{html.clock(w["first_seen"])} / {html.clock(w["last_seen"])}'),
    ])


def _usage(rows: Sequence[Mapping[str, Any]]) -> str:
    headers = ("Agent", "Model", "Calls", "Successes", "Failures", "Fallbacks", "Tokens in / out", "Cost",
               "Mean latency")
    cells = [
        (f'{r["agent"]}|{r["model"]}', [
            ("agent", html.link(f'/dashboard/agents/{html.path_part(r["agent"])}', r["agent"])),
            ("model", html.text(r["model"])),
            ("calls", html.integer(r["calls"])),
            ("successes", html.integer(r["successes"])),
            ("failures", html.integer(r["failures"])),
            ("fallbacks", html.integer(r["fallbacks"])),
            ("tokens", f'{html.integer(r["tokens_in"])} / {html.integer(r["tokens_out"])}'),
            ("cost_usd", html.usd(r["cost_usd"])),
            ("latency", html.seconds(r["latency_s_mean"])),
        ])
        for r in rows
    ]
    return html.table(headers, cells, "No calls.")


def _calls(calls: Sequence[Mapping[str, Any]]) -> str:
    headers = ("#", "Time", "Request", "Agent", "Answered by", "Attempts", "Status", "Latency", "Cost",
               "Quality", "Reward", "Feedback")
    rows = [
        (c["id"], [
            ("n", str(i + 1)),
            ("at", html.clock(c["at"])),
            ("id", f'<code>{html.text(c["id"])}</code>'),
            ("agent", html.text(c["agent"])),
            ("model", html.text(c["model"])),
            ("attempts", attempts(c["attempts"])),
            ("status", html.badge(str(c["status"] or "unknown"))),
            ("latency", html.seconds(c["latency_s"])),
            ("cost_usd", html.usd(c["cost_usd"])),
            ("quality", html.number(c["quality"])),
            ("reward", html.number(c["reward"])),
            ("feedback", html.number(c["feedback"])),
        ])
        for i, c in enumerate(calls)
    ]
    return html.table(headers, rows, "No requests recorded.")
