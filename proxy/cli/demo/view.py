"""How the demo draws its tally: a rich table for a terminal, one plain line otherwise."""

from __future__ import annotations

from dataclasses import dataclass

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from proxy.cli.demo.tally import Tally

BAR_WIDTH = 12


@dataclass(frozen=True, slots=True)
class Progress:
    """Where the run is: seconds so far and planned, calls sent, workflows, the outage."""

    elapsed_s: float
    planned_s: float
    calls: int
    workflows: int
    outage: str | None


def headline(progress: Progress) -> str:
    """One line: time, calls and their rate, workflows, and the outage if it started."""
    rate = progress.calls / progress.elapsed_s if progress.elapsed_s > 0 else 0.0
    line = (
        f"{progress.elapsed_s:5.1f}/{progress.planned_s:.0f} s  {progress.calls} calls ({rate:.0f}/s)"
        f"  {progress.workflows} workflows"
    )
    return line + (f"  | {progress.outage}" if progress.outage else "")


def table(tally: Tally, progress: Progress) -> Group:
    """The live view: the headline over a row per agent and model."""
    grid = Table(box=box.SIMPLE_HEAD, expand=False)
    for name, width in (
        ("agent", 11), ("model", 9), (f"share of last {tally.window}", BAR_WIDTH + 5),
        ("picked", 6), ("calls", 5), ("failed", 6), ("fallback", 8),
    ):
        grid.add_column(name, min_width=width, no_wrap=True, justify="left" if width > 8 else "right")
    for agent, models in tally.agents.items():
        preferred = tally.preferred(agent)
        shares = tally.shares(agent)
        for index, model in enumerate(models):
            grid.add_row(*_row(tally, agent, model, shares[model], model == preferred, first=index == 0))
        grid.add_section()
    return Group(Text(headline(progress), style="bold"), grid, Text(_client_line(tally), style="dim"))


def _row(tally: Tally, agent: str, model: str, share: float, preferred: bool, *, first: bool) -> list[Text]:
    filled = round(share * BAR_WIDTH)
    bar = Text("█" * filled, style="green" if preferred else "blue")
    bar.append("·" * (BAR_WIDTH - filled), style="dim")
    bar.append(f" {share:4.0%}")
    failures = tally.counter(agent, model, "failures")
    counts = [tally.counter(agent, model, name) for name in ("decisions", "calls")]
    return [
        Text(agent if first else "", style="bold"),
        Text(model, style="bold green" if preferred else ""),
        bar,
        *(Text(str(n)) for n in counts),
        Text(str(failures), style="red" if failures else ""),
        Text(str(tally.counter(agent, model, "fallbacks"))),
    ]


def _client_line(tally: Tally) -> str:
    """What the clients saw: answered, answered after a fallback, failed."""
    parts = []
    for agent, counts in tally.clients.items():
        parts.append(f"{agent}: {counts.ok} ok, {counts.fell_back} after fallback, {counts.failed} failed")
    return "clients: " + "; ".join(parts)


def plain_line(tally: Tally, progress: Progress) -> str:
    """The periodic line printed when stdout is not a terminal."""
    parts = [headline(progress)]
    for agent in tally.agents:
        shares = " ".join(f"{model} {share:.0%}" for model, share in tally.shares(agent).items())
        fallbacks = sum(tally.counter(agent, m, "fallbacks") for m in tally.agents[agent])
        failures = sum(tally.counter(agent, m, "failures") for m in tally.agents[agent])
        parts.append(f"{agent}: {shares} (fallbacks {fallbacks}, failures {failures})")
    return " | ".join(parts)
