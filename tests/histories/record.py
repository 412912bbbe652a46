"""Record workflow histories for the replay test (tests/workflow/test_replay.py).

    .venv/bin/python -m tests.histories.record [SCENARIO ...]

Runs a few deployments on the time-skipping server with the fakes and writes each history as
JSON here. Re-record only on purpose: the committed histories are what deployments in flight
look like to the next version of the workflows, so a change that cannot replay them must be
guarded with `workflow.patched(...)` instead.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from greenshift.binaries import SERVER_STARTUP_TIMEOUT, temporal_test_server
from greenshift.simulate.fakes import SimJudges
from tests.fakes import FleetFaults
from tests.workflow.harness import World, canary, rolling, variant, wait_for, world
from workflows.messages import ABORT, ALARM_TRIPPED, PAUSE, RESUME, AlarmTripped, ControlRequest

HERE = Path(__file__).parent
# Histories of each workflow generation are kept side by side, never overwritten: "" for those
# recorded before the lean-round-trips patch (workflows/deployment.py), "lean-" after it,
# "lean-judged-" once the judge-lacking-data patch (workflows/judging.py) joined it,
# "lean-judged-local-prepare-2-" once the preparation became a local activity, every earlier
# patch implied (prepare-local-2); "traffic-local-3-" once traffic steps did too, one patch
# marker implying every earlier one (traffic-local-3), with DeleteEndpoint's registry steps
# local as well (delete-local-1); "place-local-4-" once provision and terminate steps were
# placed by a local activity (place-local-4) and DeleteEndpoint's placements too
# (delete-local-2), with "canary_on_local_host" recording that path with a host registered, as
# `greenshift up` runs; "prepare-place-5-" once the preparation began the first step too
# (prepare-place-5), and blue/green plans ended with one final bake of both waits.
GENERATION = "prepare-place-5-"
WHO = ControlRequest(actor="recorder", reason="replay fixture")


async def _update(w: World, config: dict[str, Any] | None, count: int = 2) -> WorkflowHandle:
    await w.create("e1", "c1", variant(count=count))
    w.add_config("c2", variant(model="m2", count=count))
    request: dict[str, Any] = {"EndpointName": "e1", "EndpointConfigName": "c2"}
    if config is not None:
        request["DeploymentConfig"] = config
    return await w.start("UpdateEndpoint", request)


async def canary_success(w: World, env: WorkflowEnvironment) -> list[WorkflowHandle]:
    handle = await _update(w, canary(alarms=("errors",)))
    await handle.result()
    return [w.started[0], handle]


async def canary_alarm(w: World, env: WorkflowEnvironment) -> list[WorkflowHandle]:
    handle = await _update(w, canary(alarms=("errors",)))
    await wait_for(handle, lambda v: v.baking)
    w.alarms.set_state("errors", "ALARM")
    await handle.signal(ALARM_TRIPPED, AlarmTripped(name="errors", reason="recorded"))
    await _ignore_failure(handle)
    return [handle]


async def rolling_paused_then_aborted(w: World, env: WorkflowEnvironment) -> list[WorkflowHandle]:
    handle = await _update(w, rolling(batch=1, rollback_batch=1), count=3)
    await wait_for(handle, lambda v: v.baking)
    await handle.execute_update(PAUSE, WHO)
    await wait_for(handle, lambda v: v.phase == "Paused", env)
    await handle.execute_update(RESUME, WHO)
    await wait_for(handle, lambda v: v.baking and (v.step_index or 0) > 3, env)
    await handle.execute_update(ABORT, WHO)
    await _ignore_failure(handle)
    return [handle]


async def weights_and_delete(w: World, env: WorkflowEnvironment) -> list[WorkflowHandle]:
    await w.create("e1", "c1", variant(count=1))
    weights = await w.start(
        "UpdateEndpointWeightsAndCapacities",
        {
            "EndpointName": "e1",
            "DesiredWeightsAndCapacities": [{"VariantName": "A", "DesiredInstanceCount": 2}],
        },
    )
    await weights.result()
    delete = await w.start("DeleteEndpoint", {"EndpointName": "e1"})
    await delete.result()
    return [weights, delete]


async def create_failed(w: World, env: WorkflowEnvironment) -> list[WorkflowHandle]:
    w.add_config("c1", variant(model="broken"))
    handle = await w.start("CreateEndpoint", {"EndpointName": "e1", "EndpointConfigName": "c1"})
    await _ignore_failure(handle)
    return [handle]


async def judge_quiet_paused_resumed(w: World, env: WorkflowEnvironment) -> list[WorkflowHandle]:
    """The first bake's judge never gets data: extended, paused, resumed, judged once more."""
    handle = await _update(w, canary(wait=60, final=0, alarms=("errors",)))
    await wait_for(handle, lambda v: v.paused, env)
    await handle.execute_update(RESUME, WHO)
    await handle.result()
    return [handle]


async def canary_on_local_host(w: World, env: WorkflowEnvironment) -> list[WorkflowHandle]:
    """canary_success with the machine registered as a host (steps placed, then run by the
    host's agent on its own queue), then the endpoint deleted."""
    handles = await canary_success(w, env)
    delete = await w.start("DeleteEndpoint", {"EndpointName": "e1"})
    await delete.result()
    return [*handles, delete]


async def _ignore_failure(handle: WorkflowHandle) -> None:
    try:
        await handle.result()
    except Exception:  # the recorded failure is the point
        return


SCENARIOS: dict[str, Callable[[World, WorkflowEnvironment], Awaitable[list[WorkflowHandle]]]] = {
    "canary_success": canary_success,
    "canary_alarm": canary_alarm,
    "rolling_paused_then_aborted": rolling_paused_then_aborted,
    "weights_and_delete": weights_and_delete,
    "create_failed": create_failed,
    "judge_quiet_paused_resumed": judge_quiet_paused_resumed,
    "canary_on_local_host": canary_on_local_host,
}
# Scenarios run with the machine registered as a host (tests/workflow/harness.py, local_host).
LOCAL_HOST = {"canary_on_local_host"}
# Scenarios whose alarm is a built-in judge, scripted (greenshift.simulate.fakes.SimJudges).
JUDGES = {"judge_quiet_paused_resumed": lambda: SimJudges(["errors"], quiet={1: None})}


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=temporal_test_server(),
        test_server_startup_timeout=SERVER_STARTUP_TIMEOUT,
    )
    try:
        only = sys.argv[1:]
        for name, scenario in SCENARIOS.items():
            if only and name not in only:
                continue
            judges = JUDGES[name]() if name in JUDGES else None
            with tempfile.TemporaryDirectory() as tmp:
                faults = FleetFaults(never_healthy_models={"broken"})
                async with world(
                    env.client,
                    Path(tmp),
                    faults=faults,
                    alarms=["errors"],
                    judges=judges,
                    local_host=name in LOCAL_HOST,
                ) as w:
                    handles = await scenario(w, env)
                    for number, handle in enumerate(handles):
                        history = await handle.fetch_history()
                        path = HERE / f"{name}-{GENERATION}{number}.json"
                        path.write_text(history.to_json())
                        print(f"{path.name}: {len(history.events)} events")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
