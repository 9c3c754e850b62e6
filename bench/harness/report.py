"""Turn raw samples into medians with spread, markdown tables, JSON and a chart."""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness import profile

Row = dict[str, Any]
CellKey = tuple[str, str, int]
TARGET_ORDER = ("direct", "ours-before", "ours", "ours-variant", "ours-w2", "litellm")
COLORS = {
    "direct": "#7f7f7f",
    "ours-before": "#9467bd",
    "ours": "#1f77b4",
    "ours-variant": "#2ca02c",
    "ours-w2": "#17becf",
    "litellm": "#d62728",
}


def spread(values: Iterable[float], digits: int = 1) -> str:
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return "n/a"
    mid = f"{statistics.median(clean):.{digits}f}"
    if len(clean) == 1:
        return mid
    return f"{mid} ({min(clean):.{digits}f}..{max(clean):.{digits}f})"


def _order(name: str) -> int:
    return TARGET_ORDER.index(name) if name in TARGET_ORDER else len(TARGET_ORDER)


def group_runs(runs: list[Row]) -> dict[CellKey, dict[str, list[Row]]]:
    cells: dict[CellKey, dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for row in runs:
        cells[(row["flavour"], row["mode"], row["conc"])][row["target"]].append(row)
    return cells


def added(rows: list[Row], direct: list[Row], key: str) -> list[float]:
    """Per repetition: target minus direct (same rep ran back to back, so drift cancels)."""
    base = {row["rep"]: row[key] for row in direct}
    return [row[key] - base[row["rep"]] for row in rows if row["rep"] in base]


def throughput_table(runs: list[Row]) -> str:
    head = (
        "| upstream | mode | c | target | req/s | p50 ms | p90 ms | p99 ms | +p50 ms | +p99 ms "
        "| CPU ms/req | other load | errors |\n|" + "---|" * 13
    )
    lines = [head]
    for (flavour, mode, conc), by_target in sorted(group_runs(runs).items()):
        direct = by_target.get("direct", [])
        for name in sorted(by_target, key=_order):
            lines.append(f"| {flavour} | {mode} | {conc} | {name} | " + _cells(by_target[name], direct))
    return "\n".join(lines)


def _col(rows: list[Row], key: str) -> list[Any]:
    return [row[key] for row in rows]


def _cells(rows: list[Row], direct: list[Row]) -> str:
    return (
        f"{spread(_col(rows, 'rps'), 0)} | {spread(_col(rows, 'p50_ms'), 2)} "
        f"| {spread(_col(rows, 'p90_ms'), 2)} | {spread(_col(rows, 'p99_ms'), 2)} "
        f"| {spread(added(rows, direct, 'p50_ms'), 2)} | {spread(added(rows, direct, 'p99_ms'), 2)} "
        f"| {spread(_col(rows, 'cpu_ms_per_req'), 2)} | {_percent(_col(rows, 'other_load'))} "
        f"| {sum(_col(rows, 'errors')):.0f} |"
    )


def _percent(values: list[float | None]) -> str:
    clean = [v for v in values if v is not None]
    return f"{100 * max(clean):.0f}%" if clean else "n/a"


def contention_warning(runs: list[Row]) -> list[str]:
    loads = [r["other_load"] for r in runs if r.get("other_load") is not None]
    worst = max(loads, default=0.0)
    if worst < 0.05:
        return []
    return [
        f"**WARNING: other processes used up to {100 * worst:.0f}% of the proxy core during "
        "samples (column `other load`, max over repetitions): figures in those rows are "
        "contaminated; rerun on a quiet machine**"
    ]


def ratio_table(runs: list[Row], ours: str = "ours", other: str = "litellm") -> str:
    """Our proxy against LiteLLM's: throughput ratio and added-p50 ratio ."""
    lines = [
        f"| upstream | mode | c | req/s {ours}/{other} | +p50 {other}/{ours} |",
        "|---|---|---|---|---|",
    ]
    for (flavour, mode, conc), by_target in sorted(group_runs(runs).items()):
        if ours not in by_target or other not in by_target:
            continue
        direct = by_target.get("direct", [])
        rps = _median([r["rps"] for r in by_target[ours]]) / _median([r["rps"] for r in by_target[other]])
        lat = _median(added(by_target[other], direct, "p50_ms")) / max(
            _median(added(by_target[ours], direct, "p50_ms")), 1e-3
        )
        lines.append(f"| {flavour} | {mode} | {conc} | {rps:.2f}x | {lat:.2f}x |")
    return "\n".join(lines) if len(lines) > 2 else f"({ours} or {other} missing: no ratios)"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ttft_table(ttft: list[Row]) -> str:
    grouped: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in ttft:
        grouped[(row["flavour"], row["target"])].append(row)
    lines = [
        "| upstream | target | TTFT p50 ms | TTFT p90 ms | +TTFT p50 ms | failures | proxy headers |",
        "|---|---|---|---|---|---|---|",
    ]
    for (flavour, name), rows in sorted(grouped.items(), key=lambda kv: (kv[0][0], _order(kv[0][1]))):
        direct = grouped.get((flavour, "direct"), [])
        headers = rows[-1]["headers"]
        lines.append(
            f"| {flavour} | {name} | {spread([r['p50_ms'] for r in rows], 2)} "
            f"| {spread([r['p90_ms'] for r in rows], 2)} "
            f"| {spread(added(rows, direct, 'p50_ms'), 2)} "
            f"| {sum(r['failures'] for r in rows)} | {_fmt_headers(headers)} |"
        )
    return "\n".join(lines)


def _fmt_headers(headers: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(headers.items())) or "-"


def process_table(processes: list[Row]) -> str:
    lines = [
        "| upstream | target | ready s | RSS warm MiB | RSS after load MiB | PSS after load MiB |",
        "|---|---|---|---|---|---|",
    ]
    for row in sorted(processes, key=lambda r: (r["flavour"], _order(r["target"]))):
        ready = "-" if row.get("ready_s") is None else f"{row['ready_s']:.2f}"
        lines.append(
            f"| {row['flavour']} | {row['target']} | {ready} | {row.get('rss_warm_mb', 0):.0f} "
            f"| {row.get('rss_after_mb', 0):.0f} | {row.get('pss_after_mb', 0):.0f} |"
        )
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    unavailable = results.get("unavailable", {})
    parts = [
        f"# Model Manager benchmark {meta['timestamp']}",
        "",
        *[f"- {line}" for line in meta["notes"] + contention_warning(results["runs"])],
        *[
            f"- **{name}: not available** — {reason.splitlines()[0][:300]}"
            for name, reason in unavailable.items()
        ],
        "",
        "## Throughput and latency (wrk; median (min..max) over repetitions)",
        "",
        throughput_table(results["runs"]),
        "",
        "## Ours vs LiteLLM proxy",
        "",
        ratio_table(results["runs"]),
        "",
        "## Ours vs ours-before (--baseline)",
        "",
        ratio_table(results["runs"], other="ours-before"),
        "",
        "## Ours-variant vs ours-before (--variant, --baseline)",
        "",
        ratio_table(results["runs"], ours="ours-variant", other="ours-before"),
        "",
        "## Time to first token (sequential, concurrency 1)",
        "",
        ttft_table(results["ttft"]),
        "",
        "## Processes",
        "",
        process_table(results["processes"]),
        "",
    ]
    parts += ["## Warnings and errors in the proxies' logs", "", log_findings(results), ""]
    if results.get("profiles"):
        parts += ["## Profiles (py-spy, not during timed samples)", "", profile.markdown(results["profiles"])]
    return "\n".join(parts)


def log_findings(results: dict[str, Any]) -> str:
    lines = []
    for entry in results.get("log_findings", []):
        head = f"- {entry['target']} ({entry['flavour']}):"
        if not entry["lines"]:
            lines.append(head + " none")
            continue
        lines.append(head)
        lines += [f"  - {count}x `{text}`" for text, count in entry["lines"]]
    return "\n".join(lines) or "(no proxy ran)"


def save(results: dict[str, Any], outdir: Path, stamp: str) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    md, js = outdir / f"{stamp}.md", outdir / f"{stamp}.json"
    md.write_text(markdown(results))
    js.write_text(json.dumps(results, indent=1, default=str))
    saved = [md, js]
    chart = outdir / f"{stamp}.png"
    if plot(results["runs"], chart):
        saved.append(chart)
    return saved


def plot(runs: list[Row], path: Path) -> bool:
    """Bars of req/s and added p50 per target/scenario/concurrency; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    cells = group_runs(runs)
    scenarios = sorted({(f, m) for f, m, _ in cells})
    fig, axes = plt.subplots(2, len(scenarios), figsize=(4.5 * len(scenarios), 7), squeeze=False)
    for col, scenario in enumerate(scenarios):
        _bars(axes[0][col], cells, scenario, metric="rps")
        _bars(axes[1][col], cells, scenario, metric="added_p50")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _bars(
    ax: Any, cells: dict[CellKey, dict[str, list[Row]]], scenario: tuple[str, str], *, metric: str
) -> None:
    concs = sorted(c for f, m, c in cells if (f, m) == scenario)
    names = sorted({n for (f, m, _), t in cells.items() if (f, m) == scenario for n in t}, key=_order)
    if metric == "added_p50":
        names = [n for n in names if n != "direct"]
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        values = [_metric(cells[(*scenario, c)], name, metric) for c in concs]
        xs = [x + i * width for x in range(len(concs))]
        ax.bar(xs, values, width, label=name, color=COLORS.get(name))
    ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(concs))])
    ax.set_xticklabels([f"c={c}" for c in concs])
    ax.set_yscale("log")
    ax.set_title(f"{scenario[0]}/{scenario[1]}: " + ("req/s" if metric == "rps" else "added p50 ms"))
    ax.legend(fontsize=7)


def _metric(by_target: dict[str, list[Row]], name: str, metric: str) -> float:
    rows = by_target.get(name, [])
    if metric == "rps":
        return _median([r["rps"] for r in rows]) if rows else 0.0
    delta = _median(added(rows, by_target.get("direct", []), "p50_ms")) if rows else 0.0
    return max(delta, 1e-3)
