"""A PNG of the suite's regret curves: one panel per scenario, one line per variant."""

from __future__ import annotations

import math
from pathlib import Path

from policies.replay.suite import QUICK_STEPS, SuiteReport


def plot_regret(report: SuiteReport, path: Path) -> None:
    """Write the cumulative regret (vs best fixed per agent per phase) of every cell to
    ``path``; RuntimeError without matplotlib."""
    try:
        import matplotlib as mpl  # noqa: PLC0415 - optional dependency

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError as error:
        raise RuntimeError("plotting needs matplotlib: pip install 'model-manager[plot]'") from error
    names = report.scenarios
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    figure, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    steps = QUICK_STEPS if report.options.quick else report.options.steps
    for i, name in enumerate(names):
        ax = axes[i // cols][i % cols]
        for variant in report.options.variants:
            curve = report.cell(name, variant.label).regret
            ax.plot([(p + 1) * steps / len(curve) for p in range(len(curve))], curve,
                    label=variant.label)
        ax.set_title(name, fontsize="small")
        ax.tick_params(labelsize="x-small")
    for j in range(len(names), rows * cols):
        axes[j // cols][j % cols].axis("off")
    axes[0][0].legend(fontsize="x-small")
    figure.supxlabel("requests")
    figure.supylabel("cumulative regret vs best fixed per agent (per phase)")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
