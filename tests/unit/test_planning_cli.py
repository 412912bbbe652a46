"""`greenshift plan` offline: the example files print a timeline; bad input exits 2 with the
message alone."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from greenshift.cli.plan import plan_command
from greenshift.planning.model import Plan, Strategy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plans"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(plan_command, list(args))
    return result.exit_code, result.stdout, result.stderr


def base() -> list[str]:
    return [
        "--current",
        str(EXAMPLES / "current.json"),
        "--endpoint-config",
        str(EXAMPLES / "new-config.json"),
    ]


def test_each_example_prints_its_timeline() -> None:
    for name, first_shift in (
        ("canary", "green/AllTraffic 25%"),
        ("linear", "25%"),
        ("rolling", "green/AllTraffic 25%"),
    ):
        code, out, err = run(*base(), "--deployment-config", str(EXAMPLES / f"{name}.json"))
        assert (code, err) == (0, "")
        assert out.startswith(f"Plan: {name.upper()} (AllTraffic)")
        assert first_shift in out and "peak instances:" in out and "minimum duration:" in out


def test_json_output_is_the_plan() -> None:
    code, out, _ = run(*base(), "--deployment-config", str(EXAMPLES / "rolling.json"), "--json")
    assert code == 0
    plan = Plan.model_validate_json(out)
    assert plan.strategy is Strategy.ROLLING and plan.peak_instances == 5


def test_update_request_carries_the_retain_flags(tmp_path: Path) -> None:
    request = tmp_path / "req.json"
    request.write_text(
        json.dumps(
            {
                "EndpointName": "churn",
                "EndpointConfigName": "churn-v2",
                "RetainDeploymentConfig": True,
            }
        )
    )
    current = tmp_path / "describe.json"
    current.write_text(
        json.dumps(
            {
                "EndpointName": "churn",
                "ProductionVariants": [
                    {"VariantName": "AllTraffic", "CurrentInstanceCount": 4, "CurrentWeight": 1.0}
                ],
                "LastDeploymentConfig": json.loads((EXAMPLES / "canary.json").read_text()),
            }
        )
    )
    code, out, err = run(
        "--current",
        str(current),
        "--endpoint-config",
        str(EXAMPLES / "new-config.json"),
        "--update-request",
        str(request),
    )
    assert (code, err) == (0, "")
    assert out.startswith("Plan: CANARY")


def test_bad_input_exits_2_with_the_message_only(tmp_path: Path) -> None:
    bad = tmp_path / "dc.json"
    bad.write_text(
        json.dumps(
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "CANARY",
                        "WaitIntervalInSeconds": 60,
                        "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 3},
                    }
                }
            }
        )
    )
    code, out, err = run(*base(), "--deployment-config", str(bad))
    assert code == 2 and out == ""
    assert err.startswith("CanarySize INSTANCE_COUNT 3") and "Traceback" not in err

    bad.write_text("{not json")
    code, out, err = run(*base(), "--deployment-config", str(bad))
    assert code == 2 and "is not valid JSON" in err and "Traceback" not in err

    code, _, err = run(*base(), "--deployment-config", str(tmp_path / "missing.json"))
    assert code == 2 and err.startswith("Cannot read")

    bad.write_text(json.dumps({"RollingUpdatePolicy": {"WaitIntervalInSeconds": 5000}}))
    code, _, err = run(*base(), "--deployment-config", str(bad))
    assert code == 2 and "validation error" in err


def test_missing_files_are_a_usage_error() -> None:
    code, out, err = run()
    assert code == 2 and out == "" and "--current" in err
