"""``model-manager evaluate`` end to end: the real CLI entry point on small hand-made tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import DATA, REPO

from proxy.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["evaluate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_report_on_a_table_with_a_known_best_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "--data", str(DATA / "replay_constant.csv"), "--policy", "fixed",
        "--steps", "200", "--seeds", "2", "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    for key in ("policy_mean_reward", "best_fixed_per_agent_mean_reward",
                "best_fixed_overall_mean_reward", "oracle_mean_reward", "random_mean_reward"):
        assert key in report
    # every prompt answers 0.9 from "good" and 0.1 from "poor": the figures are exact
    assert report["oracle_mean_reward"] == pytest.approx(0.9)
    assert report["random_mean_reward"] == pytest.approx(0.5)
    assert "requests" in err  # the progress bar goes to stderr, stdout stays pure JSON


def test_policy_options_reach_the_policy(capsys: pytest.CaptureFixture[str]) -> None:
    """exploration_rate=1 makes Thompson uniform: its reward is the random figure."""
    args = ("--data", str(DATA / "replay_constant.csv"), "--steps", "4000", "--seeds", "1", "--json")
    code, out, _ = run(capsys, *args, "--policy-option", "exploration_rate=1")
    assert code == 0
    explored = json.loads(out)
    assert explored["policy_mean_reward"] == pytest.approx(explored["random_mean_reward"], abs=0.03)
    code, out, _ = run(capsys, *args)
    learned = json.loads(out)
    assert learned["policy_mean_reward"] > explored["policy_mean_reward"] + 0.2


def test_table_output_and_plot(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plot = tmp_path / "curve.png"
    code, out, err = run(
        capsys, "--data", str(DATA / "replay_tiny.csv"), "--steps", "300", "--seeds", "1",
        "--plot", str(plot),
    )
    assert code == 0, err
    assert "oracle" in out and "best_fixed_per_agent" in out
    assert plot.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", str(DATA / "bad_quality.csv")], "quality"),
        (["--data", str(DATA / "bad_missing_column.csv")], "column"),
        (["--data", str(DATA / "replay_tiny.csv"), "--policy-option", "exploration_rate"], "NAME=NUMBER"),
        (["--data", str(DATA / "replay_tiny.csv"), "--policy-option", "no_such_option=1"], "no_such_option"),
        (["--data", str(DATA / "replay_tiny.csv"), "--steps", "0"], "steps"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert message in err


def test_progress_off_a_terminal_is_plain_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """stderr is captured (not a terminal): no carriage returns, one line per quarter."""
    code, _, err = run(
        capsys, "--data", str(DATA / "replay_constant.csv"), "--policy", "fixed",
        "--steps", "2000", "--seeds", "1", "--json",
    )
    assert code == 0, err
    assert "\r" not in err
    progress = [line for line in err.splitlines() if line.endswith("s") and "requests" in line]
    assert [line.split()[0] for line in progress] == ["500/2000", "1000/2000", "1500/2000", "2000/2000"]


def test_a_reader_that_closes_the_pipe_early_gets_no_traceback() -> None:
    """``evaluate --json | head -c0``: the write into a closed pipe ends quietly with exit 0."""
    argv = [sys.executable, "-m", "proxy", "evaluate", "--data", str(DATA / "replay_constant.csv"),
            "--policy", "fixed", "--steps", "50", "--seeds", "1", "--json"]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # before the report is written: the command starts in well over 10 ms
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "BrokenPipeError" not in err
