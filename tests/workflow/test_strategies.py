"""Every strategy succeeds on the time-skipping server: the endpoint ends InService on the new
config, traffic moves in the planned stages, the old fleet is retired, the waits really ran."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from greenshift.status import DeploymentOutcome, EndpointStatus
from tests.workflow.harness import (
    World,
    all_at_once,
    canary,
    green_shares,
    linear,
    peak_instances,
    rolling,
    variant,
    world,
)


async def deploy(w: World, count: int, config: dict[str, Any] | None) -> tuple[str, str]:
    """Create e1 on c1 with `count` instances, update it to c2; returns (blue, green) fleet ids."""
    await w.create("e1", "c1", variant(count=count))
    blue = w.endpoint("e1").variants[0].fleet_id
    w.add_config("c2", variant(model="m2", count=count))
    request: dict[str, Any] = {"EndpointName": "e1", "EndpointConfigName": "c2"}
    if config is not None:
        request["DeploymentConfig"] = config
    assert await w.run("UpdateEndpoint", request) == {"EndpointArn": w.endpoint("e1").arn}
    endpoint = w.endpoint("e1")
    assert endpoint.status is EndpointStatus.IN_SERVICE
    assert endpoint.config_name == "c2"
    assert endpoint.failure_reason is None and endpoint.pending is None
    green = endpoint.variants[0].fleet_id
    assert blue and green and green != blue
    assert w.fleet.sizes == {blue: 0, green: count}
    assert endpoint.variants[0].current_instance_count == count
    deployments = w.registry.list_deployments("e1")
    assert deployments[0].outcome is DeploymentOutcome.SUCCEEDED
    return blue, green


@pytest.mark.parametrize(
    ("name", "count", "config", "shares"),
    [
        ("no-config", 2, None, [1.0]),
        ("all-at-once", 2, all_at_once(), [1.0]),
        ("canary", 4, canary(size=1), [0.25, 1.0]),
        ("linear", 4, linear(percent=25), [0.25, 0.5, 0.75, 1.0]),
        ("rolling", 3, rolling(batch=1), [1 / 3, 2 / 3, 1.0]),
    ],
)
async def test_strategy_succeeds(
    env: WorkflowEnvironment,
    tmp_path: Path,
    name: str,
    count: int,
    config: dict[str, Any] | None,
    shares: list[float],
) -> None:
    async with world(env.client, tmp_path) as w:
        started = await env.get_current_time()
        _, green = await deploy(w, count, config)
        assert green_shares(w.router, "e1", green)[1:] == [round(s, 4) for s in shares]
        events = [
            e.type
            for e in w.registry.list_events(w.registry.list_deployments("e1")[0].deployment_id)
        ]
        assert "StepStarted" in events and events[-1] == "Finished"
        elapsed = (await env.get_current_time() - started).total_seconds()
        if name == "rolling":
            assert peak_instances(w.fleet) == count + 1  # N + one batch
            assert elapsed >= 3 * 60
        elif name == "canary":
            assert elapsed >= 300 + 300 + 600
        elif name == "linear":
            assert elapsed >= 4 * 60 + 120
