"""A judge that lacks data never lets a bake pass silently (issue 18): the bake extends, and
then either the data comes (the bake passes) or the deployment pauses and says why; a resume
judges once more and goes on. A judge that finds the new fleet worse rolls it back. Every
verdict is an event of the deployment, with its figures."""

from __future__ import annotations

from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from greenshift import naming
from greenshift.errors import GreenshiftError
from greenshift.metrics.judge import Z_BOUNDARY
from greenshift.metrics.judge_source import verdict_of
from greenshift.metrics.stats import Aggregate
from greenshift.metrics.verdicts import (
    EXTENDED_EVENT,
    VERDICT_EVENT,
    JudgeInput,
    Verdict,
    extension_step,
    max_extension,
)
from greenshift.names import JUDGE_BAKE
from greenshift.simulate.fakes import SimJudges
from greenshift.status import EndpointStatus
from tests.workflow.harness import (
    World,
    all_at_once,
    bake_indices,
    plan_of,
    variant,
    wait_for,
    world,
)
from workflows.messages import RESUME, ControlRequest, ControlResult

DEPLOYMENT = "dep-0001-judging"
BAKE = 120  # seconds: extensions of 30 s, 120 s at most


def request() -> dict[str, object]:
    return {
        "EndpointName": "e1",
        "EndpointConfigName": "c2",
        "DeploymentConfig": all_at_once(wait=BAKE, final=0, alarms=("judge",)),
    }


def types(w: World, kind: str) -> list[str]:
    """The messages of the deployment's events of one type, in order."""
    return [e.message for e in w.registry.list_events(DEPLOYMENT) if e.type == kind]


async def test_lacking_data_extends_the_bake_then_pauses_and_a_resume_goes_on(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    judges = SimJudges(["judge"], quiet={1: None})  # the first bake never gets enough data
    async with world(env.client, tmp_path, alarms=["judge"], judges=judges) as w:
        await w.create("e1", "c1", variant(count=2))
        w.add_config("c2", variant(model="m2", count=2))
        handle = await w.start("UpdateEndpoint", request(), DEPLOYMENT)
        first = bake_indices(await plan_of(w, DEPLOYMENT))[0]
        await wait_for(handle, lambda v: v.baking and v.step_index == first)
        green = naming.fleet_id("e1", DEPLOYMENT, "A")
        share = w.router.shares("e1")[green]

        # The bake (120 s) and every extension are skipped to their ends: then it pauses.
        view = await wait_for(handle, lambda v: v.paused, env)
        assert view.phase == "Paused" and view.step_index == first
        steps = BAKE // extension_step(BAKE)
        extended = types(w, EXTENDED_EVENT)
        assert len(extended) == steps == 4, extended
        assert "extended by 30 s (120 s of at most 120 s so far)" in extended[-1]
        verdicts = types(w, VERDICT_EVENT)
        assert len(verdicts) == steps + 1
        assert all("not enough data" in m and "40 requests" in m for m in verdicts)
        (paused,) = types(w, "Paused")
        assert "too little data" in paused and f"extended by {max_extension(BAKE)} s" in paused
        pending = w.endpoint("e1").pending
        assert pending is not None and pending.paused
        assert w.router.shares("e1")[green] == share  # traffic held where it was
        # Much later, still paused: it never loops, never passes on its own.
        await env.sleep(3600)
        assert (await wait_for(handle, lambda v: True)).paused
        assert len(types(w, VERDICT_EVENT)) == steps + 1

        result = await handle.execute_update(
            RESUME, ControlRequest(actor="ops", reason="quiet hours"), result_type=ControlResult
        )
        assert result.accepted
        await handle.result()
        assert w.endpoint("e1").config_name == "c2"
        verdicts = types(w, VERDICT_EVENT)
        assert any("Going on without a verdict" in m for m in verdicts), verdicts
        assert judges.looks[1] == steps + 2  # one more look after the resume


async def test_an_extension_that_brings_enough_data_passes_the_bake(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    judges = SimJudges(["judge"], quiet={1: 2})  # enough data at the third look
    async with world(env.client, tmp_path, alarms=["judge"], judges=judges) as w:
        await w.create("e1", "c1", variant(count=2))
        w.add_config("c2", variant(model="m2", count=2))
        handle = await w.start("UpdateEndpoint", request(), DEPLOYMENT)
        await wait_for(handle, lambda v: v.finished, env)
        await handle.result()
        endpoint = w.endpoint("e1")
        assert endpoint.status is EndpointStatus.IN_SERVICE and endpoint.config_name == "c2"
        assert len(types(w, EXTENDED_EVENT)) == 2
        verdicts = types(w, VERDICT_EVENT)
        assert [("not enough data" in m) for m in verdicts[:3]] == [True, True, False]
        assert "no worse" in verdicts[2] and "1000 requests" in verdicts[2]
        assert not types(w, "Paused")
        looks = [e.at for e in w.registry.list_events(DEPLOYMENT) if e.type == VERDICT_EVENT]
        waited = (looks[2] - looks[0]).total_seconds()
        assert 2 * extension_step(BAKE) <= waited < 2 * extension_step(BAKE) + 30


class FailingJudge:
    """The canary is clearly worse, though the alarm has not tripped (yet)."""

    def verdicts(self, request: JudgeInput, now: object) -> list[Verdict]:
        worse = verdict_of(
            "judge",
            "ERROR_JUDGE",
            Aggregate(count=1000, sum=60),
            Aggregate(count=2000, sum=20),
            Z_BOUNDARY,
            lambda z: z > Z_BOUNDARY,
        )
        return [worse] if "judge" in request.alarms else []

    def judge_alarms(self, names: list[str]) -> list[str]:
        return [n for n in names if n == "judge"]


async def test_a_judge_that_finds_the_new_fleet_worse_rolls_it_back(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path, alarms=["judge"], judges=FailingJudge()) as w:
        await w.create("e1", "c1", variant(count=2))
        w.add_config("c2", variant(model="m2", count=2))
        handle = await w.start("UpdateEndpoint", request(), DEPLOYMENT)
        await wait_for(handle, lambda v: v.finished, env)
        try:
            await handle.result()
            raise AssertionError("the deployment should have rolled back")
        except WorkflowFailureError:
            pass
        endpoint = w.endpoint("e1")
        assert endpoint.status is EndpointStatus.IN_SERVICE and endpoint.config_name == "c1"
        assert endpoint.failure_reason is not None
        assert "Judge alarm judge found the new fleet worse" in endpoint.failure_reason
        assert "6.00% errors of 1000 requests vs old 1.00% of 2000" in endpoint.failure_reason
        (verdict,) = [e for e in w.registry.list_events(DEPLOYMENT) if e.type == VERDICT_EVENT]
        assert verdict.detail["Verdict"] == "Fail" and verdict.detail["NewRequests"] == 1000


class BrokenJudge:
    """The metric store cannot be read (a non-retryable failure, so the test needs no retries)."""

    def verdicts(self, request: JudgeInput, now: object) -> list[Verdict]:
        raise GreenshiftError("injected: metric store unreadable")

    def judge_alarms(self, names: list[str]) -> list[str]:
        raise GreenshiftError("injected: metric store unreadable")


async def test_a_judge_that_cannot_be_read_fails_closed(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path, alarms=["judge"], judges=BrokenJudge()) as w:
        await w.create("e1", "c1", variant(count=2))
        w.add_config("c2", variant(model="m2", count=2))
        handle = await w.start("UpdateEndpoint", request(), DEPLOYMENT)
        await wait_for(handle, lambda v: v.finished, env)
        endpoint = w.endpoint("e1")
        assert endpoint.config_name == "c1" and endpoint.failure_reason is not None
        assert "Judging the bake (step" in endpoint.failure_reason
        assert "metric store unreadable" in endpoint.failure_reason


async def judging_activities(handle: WorkflowHandle) -> int:
    history = await handle.fetch_history()
    return sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == JUDGE_BAKE
    )


async def test_a_bake_whose_alarms_hold_no_judge_runs_no_judging_activity(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The alarm check says which alarms are judges: alarms with none cost the bake no judging
    activity (issue 17), while a judge among them is still judged at every bake."""
    judges = SimJudges(["judge"])
    async with world(env.client, tmp_path, alarms=["plain", "judge"], judges=judges) as w:
        await w.create("e1", "c1", variant(count=2))
        w.add_config("c2", variant(model="m2", count=2))
        w.add_config("c3", variant(model="m1", count=2))
        plain = await w.start(
            "UpdateEndpoint",
            {
                "EndpointName": "e1",
                "EndpointConfigName": "c2",
                "DeploymentConfig": all_at_once(wait=BAKE, final=0, alarms=("plain",)),
            },
            DEPLOYMENT,
        )
        await plain.result()
        assert w.endpoint("e1").config_name == "c2"
        assert len(bake_indices(await plan_of(w, DEPLOYMENT))) >= 1
        assert await judging_activities(plain) == 0
        assert not types(w, VERDICT_EVENT)

        judged = await w.start(
            "UpdateEndpoint",
            {
                "EndpointName": "e1",
                "EndpointConfigName": "c3",
                "DeploymentConfig": all_at_once(wait=BAKE, final=0, alarms=("plain", "judge")),
            },
            "dep-0002-judging",
        )
        await judged.result()
        assert w.endpoint("e1").config_name == "c3"
        bakes = len(bake_indices(await plan_of(w, "dep-0002-judging")))
        assert bakes >= 1
        assert await judging_activities(judged) == bakes
        assert judges.looks == {n: 1 for n in range(1, bakes + 1)}
