"""The RolloutGroup input's rules, the group's alarms added to each update, the deployment ids
that tell the registry which group runs them, and the CLI's pure renderings."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from greenshift.cli.group_plan import group_figures
from greenshift.cli.groups import render_history, summary
from greenshift.groups.model import (
    RolloutGroupInput,
    group_deployment_id,
    group_of,
    with_group_alarms,
)


def update(name: str, alarms: tuple[str, ...] = (), config: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"EndpointName": name, "EndpointConfigName": f"{name}-v2"}
    if config:
        doc["DeploymentConfig"] = {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 5}
            }
        }
        if alarms:
            doc["DeploymentConfig"]["AutoRollbackConfiguration"] = {
                "Alarms": [{"AlarmName": a} for a in alarms]
            }
    return doc


def test_a_group_names_each_endpoint_once() -> None:
    with pytest.raises(ValidationError, match="more than once"):
        RolloutGroupInput.model_validate(
            {
                "RolloutGroupName": "g",
                "Waves": [{"Updates": [update("a")]}, {"Updates": [update("A")]}],
            }
        )


@pytest.mark.parametrize(
    "doc",
    [
        {"RolloutGroupName": "g", "Waves": []},
        {"RolloutGroupName": "g" * 33, "Waves": [{"Updates": [update("a")]}]},
        {"RolloutGroupName": "g.h", "Waves": [{"Updates": [update("a")]}]},
        {"RolloutGroupName": "g", "Waves": [{"Updates": [{"EndpointConfigName": "x"}]}]},
        {"RolloutGroupName": "g", "Waves": [{"Updates": [update("a")]}], "Extra": 1},
    ],
)
def test_bad_groups_are_refused(doc: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RolloutGroupInput.model_validate(doc)


def test_at_most_ten_alarms_per_update_with_the_groups() -> None:
    mine = tuple(f"a{i}" for i in range(8))
    doc = {
        "RolloutGroupName": "g",
        "Waves": [{"Updates": [update("e", mine)]}],
        "Alarms": [{"AlarmName": "g1"}, {"AlarmName": "g2"}, {"AlarmName": "g3"}],
    }
    with pytest.raises(ValidationError, match="11 alarms"):
        RolloutGroupInput.model_validate(doc)


def test_group_alarms_join_each_updates_own() -> None:
    merged = with_group_alarms(update("e", ("own", "shared")), ["shared", "group"])
    alarms = merged["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert [a["AlarmName"] for a in alarms] == ["own", "shared", "group"]
    # Without a DeploymentConfig, SageMaker watches nothing: the request stays as it is.
    assert with_group_alarms(update("e", config=False), ["group"]) == update("e", config=False)


def test_deployment_ids_say_their_group() -> None:
    deployment = group_deployment_id("release-42", "0123456789abcdef")
    assert group_of(deployment) == "release-42"
    assert len(deployment) <= 64
    assert group_of("7c9e6679-7425-40de-944b-e07fc1f90ae7") is None


def test_cli_renderings() -> None:
    view = {
        "RolloutGroupName": "g",
        "Status": "RolledBack",
        "Reason": "Alarm x was in ALARM.",
        "Wave": 2,
        "WaveCount": 2,
        "Endpoints": [{"EndpointName": "a", "Status": "Reverted"}],
        "Events": [
            {"Time": "2026-01-01T00:00:00Z", "Type": "GroupStarted", "Message": "1 endpoint"},
            {
                "Time": "2026-01-01T00:00:07.5Z",
                "Type": "EndpointReverted",
                "Message": "back",
                "EndpointName": "a",
            },
        ],
    }
    assert summary(view) == "g: RolledBack (Alarm x was in ALARM.), wave 2/2: a Reverted"
    assert "+     7.5s  EndpointReverted     back [a]" in render_history(view)
    plans = [
        [
            {"Plan": {"min_duration_seconds": 60}, "PeakInstances": 4},
            {"Plan": {"min_duration_seconds": 90}, "PeakInstances": 2},
        ],
        [{"Plan": {"min_duration_seconds": 30}, "PeakInstances": 5}],
    ]
    assert group_figures(plans) == {"MinDurationSeconds": 120, "PeakInstancesOfAWave": 6}
