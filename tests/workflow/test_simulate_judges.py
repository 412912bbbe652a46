"""`greenshift simulate` shows the built-in judges' verdicts in its timeline, and rehearses a
quiet bake: extended until the data comes, or paused when it never does."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from greenshift.metrics.verdicts import EXTENDED_EVENT, VERDICT_EVENT
from greenshift.simulate.faults import FaultError, QuietFault, parse_fault
from greenshift.simulate.rehearsal import PAUSED, Scenario, SkippingClock, rehearse
from greenshift.simulate.report import render
from tests.workflow.harness import rolling, variant

WAIT = 600


def scenario(faults: list[str], judges: list[str] | None = None, **policy: int) -> Scenario:
    return Scenario.model_validate(
        {
            "CurrentEndpointConfig": {
                "EndpointConfigName": "v1",
                "ProductionVariants": [variant(model="m1", count=2)],
            },
            "NewEndpointConfig": {
                "EndpointConfigName": "v2",
                "ProductionVariants": [variant(model="m2", count=2)],
            },
            "UpdateEndpoint": {
                "EndpointName": "churn",
                "EndpointConfigName": "v2",
                "DeploymentConfig": rolling(
                    batch=1, wait=WAIT, alarms=("churn-5xx", "churn-judge"), **policy
                ),
            },
            "Faults": faults,
            **({"Judges": judges} if judges is not None else {}),
        }
    )


async def test_the_timeline_shows_each_bakes_verdict_and_a_quiet_bake_extended(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    report = await rehearse(
        env.client,
        SkippingClock(env),
        scenario(["quiet:bake=2,looks=2"], judges=["churn-judge"]),
        tmp_path,
    )
    print(render(report))
    assert report.outcome == "Succeeded"
    verdicts = [e for e in report.timeline if e.type == VERDICT_EVENT]
    extended = [e for e in report.timeline if e.type == EXTENDED_EVENT]
    # Two batches, one bake each: bake 1 judged once, bake 2 twice without data, then passed.
    assert len(verdicts) == 4 and len(extended) == 2
    assert all(e.message.startswith("churn-judge (ERROR_JUDGE): ") for e in verdicts)
    assert ["not enough data" in e.message for e in verdicts] == [False, True, True, False]
    assert "no worse" in verdicts[-1].message
    # Extensions of 150 s (a quarter of the 600 s bake), each after the look that asked for it.
    assert verdicts[-1].offset - verdicts[1].offset == pytest.approx(300, abs=30)
    assert "JudgeVerdict" in render(report) and "BakeExtended" in render(report)


async def test_a_bake_that_never_gets_data_pauses_the_rehearsal(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    report = await rehearse(env.client, SkippingClock(env), scenario(["quiet:bake=1"]), tmp_path)
    print(render(report))
    assert report.outcome == PAUSED
    paused = [e for e in report.timeline if e.type == "Paused"]
    assert len(paused) == 1 and "too little data" in paused[0].message
    assert paused[0].offset == pytest.approx(2 * WAIT, abs=30)  # bake + its maximum extension
    # With no judge named, the quiet fault judges the request's first alarm.
    assert all(
        "churn-5xx (ERROR_JUDGE)" in e.message for e in report.timeline if e.type == VERDICT_EVENT
    )


def test_quiet_faults_parse_and_need_a_judge_among_the_alarms() -> None:
    assert parse_fault("quiet:bake=2") == QuietFault(bake=2, looks=None)
    assert parse_fault("quiet:bake=1,looks=3") == QuietFault(bake=1, looks=3)
    with pytest.raises(FaultError, match="bake is missing"):
        parse_fault("quiet:looks=3")
    with pytest.raises(FaultError, match="not in the request"):
        scenario([], judges=["other"]).judge_names()
    assert scenario([]).judge_names() == []
