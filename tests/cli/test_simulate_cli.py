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
