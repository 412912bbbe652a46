"""`greenshift simulate`: the rehearsal runs the real UpdateEndpoint on the time-skipping server
in seconds, and its timeline is the one a real-time run of the same request produces."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from greenshift.simulate.faults import FaultError
from greenshift.simulate.rehearsal import Scenario, SkippingClock, WallClock, rehearse
from greenshift.simulate.report import render
from tests.workflow.harness import rolling, variant


def scenario(count: int, wait: int, faults: list[str], **policy: Any) -> Scenario:
    request = {
        "EndpointName": "churn",
        "EndpointConfigName": "v2",
        "DeploymentConfig": rolling(batch=1, wait=wait, alarms=("churn-5xx",), **policy),
    }
    return Scenario.model_validate(
        {
            "CurrentEndpointConfig": {
                "EndpointConfigName": "v1",
                "ProductionVariants": [variant(model="m1", count=count)],
            },
            "NewEndpointConfig": {
                "EndpointConfigName": "v2",
                "ProductionVariants": [variant(model="m2", count=count)],
            },
            "UpdateEndpoint": request,
            "Faults": faults,
        }
    )


LAUNCH = "Launching 1 instance(s)."


async def test_eight_hour_rolling_update_with_a_fault_in_batch_7_in_under_10_s(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    # 8 batches of one instance, an hour's bake each: 28,800 s of waits.
    started = time.monotonic()
    report = await rehearse(
        env.client, SkippingClock(env), scenario(8, 3600, ["start-fails:batch=7"]), tmp_path
    )
    took = time.monotonic() - started
    print(render(report))
    assert took < 10, f"{took:.1f} s"
    assert report.outcome == "RolledBack"
    assert report.failure_reason is not None and "ping health check" in report.failure_reason
    forward = [e for e in report.timeline if e.message == LAUNCH]
    assert len(forward) == 7
    # Six hour-long bakes passed before batch 7 failed; the rollback itself takes no time.
    assert 6 * 3600 <= report.duration_seconds < 6 * 3600 + 30
    assert abs(forward[-1].offset - 6 * 3600) < 30
    assert report.timeline[-1].type == "Finished"
    # 8 old instances + 6 new, then the rollback relaunches 6 old before the 7 new go.
    assert report.peak_instances == 14
    # 9 instances for 6 hours (old shrinking as new grows, plus the batch in flight).
    assert report.instance_hours == pytest.approx(54.0, abs=0.2)
    assert 0 < report.history_events < 10_240


async def test_an_alarm_7_minutes_into_the_second_bake(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    report = await rehearse(
        env.client, SkippingClock(env), scenario(4, 600, ["alarm:bake=2,at=420"]), tmp_path
    )
    assert report.outcome == "RolledBack"
    assert report.failure_reason is not None and "churn-5xx" in report.failure_reason
    rolling_back = next(e for e in report.timeline if e.type == "StatusChanged")
    assert 600 + 420 <= rolling_back.offset < 600 + 420 + 5


async def test_a_deadline_holds_the_deployment_until_it_expires(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    report = await rehearse(
        env.client,
        SkippingClock(env),
        scenario(4, 60, ["deadline:step=5"], timeout=1800),
        tmp_path,
    )
    assert report.outcome == "RolledBack"
    assert report.failure_reason is not None
    assert "MaximumExecutionTimeoutInSeconds (1800 seconds)" in report.failure_reason
    assert 1800 <= report.duration_seconds < 1800 + 5


async def test_an_alarm_after_the_bake_is_refused(env: WorkflowEnvironment, tmp_path: Path) -> None:
    with pytest.raises(FaultError, match="lasts 60 s"):
        await rehearse(
            env.client, SkippingClock(env), scenario(2, 60, ["alarm:bake=1,at=61"]), tmp_path
        )


@pytest.mark.parametrize("fault", ["start-fails:batch=3", "alarm:bake=3,at=1"])
async def test_the_rehearsal_timeline_is_the_real_runs_step_for_step(
    env: WorkflowEnvironment, dev_env: WorkflowEnvironment, tmp_path: Path, fault: str
) -> None:
    """The same request and fault, once skipped and once in real time on a real Temporal dev
    server: the same steps in the same order, at the same offsets (give or take the real
    run's activity time)."""
    case = scenario(4, 2, [fault])
    rehearsal = await rehearse(env.client, SkippingClock(env), case, tmp_path / "sim")
    real = await rehearse(dev_env.client, WallClock(), case, tmp_path / "real", within=60)
    assert rehearsal.outcome == real.outcome == "RolledBack"
    assert rehearsal.failure_reason == real.failure_reason
    assert rehearsal.steps() == real.steps()
    assert len(rehearsal.steps()) > 8
    for simulated, happened in zip(rehearsal.timeline, real.timeline, strict=True):
        assert abs(simulated.offset - happened.offset) < 1.5, (simulated, happened)
    assert rehearsal.peak_instances == real.peak_instances
    assert rehearsal.instance_hours == pytest.approx(real.instance_hours, rel=0.25)
