"""Optional: sample a proxy's Python stacks with py-spy under load and summarise where CPU goes."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

PY_SPY_VERSION = "0.4.3"
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
PACKAGE = re.compile(r"(?:site-packages|lib/python3\.\d+)/(?P<pkg>[A-Za-z0-9_]+)")


def ensure_py_spy(venv: Path) -> Path:
    """bench/.venv-tools with py-spy (a static binary shipped in its wheel)."""
    binary = venv / "bin" / "py-spy"
    if not binary.exists():
        print(f"installing py-spy=={PY_SPY_VERSION} into {venv} (first --profile run only)...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, f"py-spy=={PY_SPY_VERSION}"], check=True)
    return binary


def start_recording(py_spy: Path, pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    argv = [str(py_spy), "record", "-p", str(pid), "-d", f"{max(1, round(seconds))}", "-r", "200"]
    argv += ["-f", "raw", "-o", str(out), "--nonblocking", "--subprocesses"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarise(raw: Path, top: int = 12) -> dict[str, Any]:
    """Share of samples per package (self time), and the top functions by self and total time."""
    by_package: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total_time: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(part) for part in stack.split(";") if not part.startswith("process ")]
        if not frames:
            continue
        samples += count
        by_package[_package(frames[-1][1])] += count
        self_time[_label(frames[-1])] += count
        for label in {_label(frame) for frame in frames}:
            total_time[label] += count
    return {
        "samples": samples,
        "by_package": _shares(by_package, samples, top),
        "top_self": _shares(self_time, samples, top),
        "top_total": _shares(total_time, samples, top + 8),
    }


def _frame(text: str) -> tuple[str, str]:
    match = FRAME.match(text.strip())
    return (match["func"], match["file"]) if match else (text.strip(), "")


def _label(frame: tuple[str, str]) -> str:
    func, path = frame
    return f"{func} ({_short(path)})"


def _short(path: str) -> str:
    for marker in ("site-packages/", f"{REPO}/", "lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _package(path: str) -> str:
    """Top-level module of a frame's file; py-spy prints paths relative to sys.path."""
    match = PACKAGE.search(path)
    if match:
        return match["pkg"]
    head = path.lstrip("/").split("/", 1)[0].removesuffix(".py") or "?"
    return f"model_manager.{head}" if head in ("proxy", "policies") else head


def _shares(counter: Counter[str], samples: int, top: int) -> list[tuple[str, float]]:
    return [(name, round(100 * count / max(samples, 1), 1)) for name, count in counter.most_common(top)]


def markdown(profiles: list[dict[str, Any]]) -> str:
    parts = []
    for prof in profiles:
        head = f"### {prof['target']} {prof['flavour']}/{prof['mode']} c={prof['conc']}"
        parts.append(f"{head} ({prof['samples']} samples, {prof['cpu_ms_per_req']:.2f} CPU ms/req)")
        parts.append("")
        parts.append("self time by package: " + _inline(prof["by_package"]))
        parts.append("")
        parts.append("| top functions, self % | | top functions, total % | |\n|---|---|---|---|")
        selfs, totals = prof["top_self"], prof["top_total"]
        for i in range(max(len(selfs), len(totals))):
            left = f"{selfs[i][0]} | {selfs[i][1]}" if i < len(selfs) else " | "
            right = f"{totals[i][0]} | {totals[i][1]}" if i < len(totals) else " | "
            parts.append(f"| {left} | {right} |")
        parts.append("")
    return "\n".join(parts)


def _inline(pairs: list[tuple[str, float]]) -> str:
    return ", ".join(f"{name} {share}%" for name, share in pairs)
