"""`greenshift simulate` from the command line: the example 8-hour rolling update with its 7th
batch failing, printed; and bad fault specs refused with exit 2 before any server starts."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from greenshift.cli.main import cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "simulate" / "rolling-8h.json"


def test_simulate_prints_the_timeline_and_the_figures() -> None:
    result = CliRunner().invoke(
        cli, ["simulate", str(EXAMPLE), "--fault", "start-fails:batch=7", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["outcome"] == "RolledBack"
    assert report["peak_instances"] == 14
    assert 6 * 3600 <= report["duration_seconds"] < 6 * 3600 + 30
    assert report["wall_seconds"] < 10
    assert [e["message"] for e in report["timeline"]].count("Launching 1 instance(s).") == 7


def test_a_bad_fault_is_refused_with_exit_2() -> None:
    result = CliRunner().invoke(cli, ["simulate", str(EXAMPLE), "--fault", "alarm:bake=2"])
    assert result.exit_code == 2
    assert "at is missing" in result.output


def test_the_judge_example_shows_its_verdicts_and_a_never_quiet_bake_pauses() -> None:
    example = EXAMPLE.with_name("canary-judge.json")
    result = CliRunner().invoke(cli, ["simulate", str(example), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    kinds = [e["type"] for e in report["timeline"]]
    # Two bakes (the canary's; the full fleet's with the termination wait): the first extended
    # twice, judged three times; the second judged once.
    assert kinds.count("JudgeVerdict") == 4 and kinds.count("BakeExtended") == 2
    assert report["outcome"] == "Succeeded"
    # 600 + 2 x 150 + (600 + 300) s; real time passes on the server between the driver's skips.
    assert 1800 <= report["duration_seconds"] < 1800 + 30
    quiet = CliRunner().invoke(cli, ["simulate", str(example), "--fault", "quiet:bake=2"])
    assert quiet.exit_code == 0, quiet.output
    # The request has a deadline (7200 s): paused, nobody resumes, the deadline rolls it back.
    assert "too little data" in quiet.output and "RolledBack" in quiet.output
    assert "MaximumExecutionTimeoutInSeconds (7200 seconds)" in quiet.output
