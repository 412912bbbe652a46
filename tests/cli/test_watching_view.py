"""The watch view built from DescribeEndpoint and DescribeDeployment answers (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from greenshift.cli.watching import DeploymentView, summary_line

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def described(config: str, pending: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "EndpointName": "demo",
        "EndpointStatus": "Updating" if pending else "InService",
        "EndpointConfigName": config,
        "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": 3}],
    }
    if pending:
        doc["PendingDeploymentSummary"] = pending
    return doc


def deployment(outcome: str, progress: dict[str, Any] | None = None) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "Outcome": outcome,
        "StartTime": NOW.timestamp() - 60,
        "FromEndpointConfigName": "v1",
        "ToEndpointConfigName": "v2",
    }
    if progress:
        summary["Progress"] = progress
    return {"Deployment": summary, "Events": [{"Message": "Baking for 300 seconds."}]}


def test_mid_canary_shows_the_new_fleets_share_and_the_bake() -> None:
    pending = {
        "EndpointConfigName": "v2",
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "CurrentInstanceCount": 1,
                "DesiredInstanceCount": 3,
                "CurrentWeight": 0.25,
                "DesiredWeight": 1.0,
                "VariantStatus": [{"Status": "Baking", "StatusMessage": "Baking for 300 seconds."}],
            }
        ],
    }
    progress = {
        "Phase": "Baking",
        "StepIndex": 2,
        "StepCount": 7,
        "BakeEndsAt": NOW.timestamp() + 120,
        "AlarmStates": {"5xx": "OK"},
        "Paused": False,
    }
    view = DeploymentView.from_api(
        described("v1", pending), deployment("Running", progress), now=NOW
    )
    line = view.variants[0]
    assert (line.green_share, line.blue_instances, line.green_instances) == (0.25, 3, 1)
    assert (view.step, view.bake_seconds_left, view.target_config) == ("3/7", 120.0, "v2")
    assert summary_line(view) == (
        "Updating  v1 -> v2  phase Baking  step 3/7  AllTraffic new 25% (3 old / 1 of 3 new)  "
        "bake 120s left  5xx OK  | Baking for 300 seconds."
    )
    # Without the countdown, the line changes only when the deployment does.
    later = DeploymentView.from_api(
        described("v1", pending), deployment("Running", progress), now=NOW.replace(minute=1)
    )
    assert summary_line(later) != summary_line(view)
    assert summary_line(later, countdown=False) == summary_line(view, countdown=False)


def test_settled_views_show_where_the_traffic_landed() -> None:
    done = DeploymentView.from_api(described("v2"), deployment("Succeeded"), now=NOW)
    assert [(v.green_share, v.blue_instances, v.green_instances) for v in done.variants] == [
        (1.0, 0, 3)
    ]
    back = DeploymentView.from_api(described("v1"), deployment("RolledBack"), now=NOW)
    assert [(v.green_share, v.blue_instances, v.green_instances) for v in back.variants] == [
        (0.0, 3, 0)
    ]
