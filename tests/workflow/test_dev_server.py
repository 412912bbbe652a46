"""On a real Temporal dev server (real time): a worker SIGKILLed mid-bake and a new one finishes
the deployment with no step done twice; `temporal workflow start` with the SageMaker JSON as
input deploys; an alarm reaches the rollback's first traffic change within 2 s."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from greenshift.binaries import temporal_cli
from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from tests.fakes import FakeAlarms, FakeFleet, FakeRouter
from tests.workflow.harness import World, canary, variant, wait_for, world
from worker.alarm_watcher import AlarmWatcher

ROOT = Path(__file__).resolve().parents[2]


def target_of(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


async def spawn_worker(
    target: str, queue: str, state: Path, module: str = "tests.workflow.worker_proc"
) -> asyncio.subprocess.Process:
    """A worker process (`module`: worker_proc, or another of the same arguments) on `queue`,
    once it has written `worker.ready` into `state`."""
    ready = state / "worker.ready"
    ready.unlink(missing_ok=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        target,
        queue,
        str(state),
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert proc.returncode is None, "worker process exited"
        assert time.monotonic() < deadline, "worker did not start"
        await asyncio.sleep(0.1)
    return proc


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout=15)
        except TimeoutError:
            proc.kill()
            await asyncio.wait_for(proc.wait(), timeout=5)


@pytest.mark.timeout(120)
async def test_worker_killed_mid_bake_finishes_with_no_step_twice(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    queue = f"greenshift-{uuid.uuid4().hex[:8]}"
    settings = Settings(home=tmp_path, task_queue=queue)
    registry = SqlRegistry(f"sqlite:///{tmp_path / 'registry.db'}", arn_for=settings.arn)
    # This World only seeds the registry and starts workflows: the worker is another process.
    w = World(dev_env.client, settings, registry, FakeFleet(), FakeRouter(), FakeAlarms(), queue)
    procs = [await spawn_worker(target_of(dev_env), queue, tmp_path)]
    try:
        await w.create("e1", "c1", variant(count=2))
        w.add_config("c2", variant(model="m2", count=2))
        handle = await w.start(
            "UpdateEndpoint",
            {
                "EndpointName": "e1",
                "EndpointConfigName": "c2",
                "DeploymentConfig": canary(wait=6, size=1, final=1),
            },
        )
        await wait_for(handle, lambda v: v.baking)
        procs[0].kill()  # SIGKILL: no chance to finish anything
        await asyncio.wait_for(procs[0].wait(), timeout=10)
        procs.append(await spawn_worker(target_of(dev_env), queue, tmp_path))
        await asyncio.wait_for(handle.result(), timeout=60)
    finally:
        for proc in procs:
            await stop(proc)
    fleet = FakeFleet(tmp_path / "fleet.json")
    router = FakeRouter(tmp_path / "router.json")
    endpoint = registry.get_endpoint("e1")
    registry.close()
    assert endpoint is not None and endpoint.config_name == "c2"
    # create: blue up; update: green up, blue down. Each exactly once, across both workers.
    assert [c[0] for c in fleet.calls] == ["up", "up", "down"], fleet.calls
    assert len({tuple(c) for c in fleet.calls}) == len(fleet.calls)
    # create: all to blue; update: canary, all to green. Each applied once.
    assert router.calls == len(router.applied) == 3


@pytest.mark.timeout(60)
async def test_temporal_cli_starts_a_deployment_with_the_sagemaker_json(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(dev_env.client, tmp_path) as w:
        await w.create("e1", "c1", variant(count=2))
        w.add_config("c2", variant(model="m2", count=2))
        request = {
            "EndpointName": "e1",
            "EndpointConfigName": "c2",
            "DeploymentConfig": canary(wait=1, size=1, final=0),
        }
        workflow_id = f"cli-{uuid.uuid4().hex[:6]}"
        cli = await asyncio.create_subprocess_exec(
            temporal_cli(),
            "workflow",
            "start",
            "--address",
            target_of(dev_env),
            "--namespace",
            "default",
            "--task-queue",
            w.task_queue,
            "--type",
            "UpdateEndpoint",
            "--workflow-id",
            workflow_id,
            "--input",
            json.dumps(request),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(cli.communicate(), timeout=30)
        assert cli.returncode == 0, (out, err)
        handle = dev_env.client.get_workflow_handle(workflow_id)
        result = await asyncio.wait_for(handle.result(), timeout=40)
        assert result == {"EndpointArn": w.endpoint("e1").arn}
        assert w.endpoint("e1").config_name == "c2"


@pytest.mark.timeout(90)
async def test_alarm_reaches_the_first_rollback_traffic_change_within_2_seconds(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(dev_env.client, tmp_path, alarms=["errors"]) as w:
        stopping = asyncio.Event()
        watcher = AlarmWatcher(dev_env.client, w.registry, w.alarms, interval_seconds=0.5)
        watching = asyncio.create_task(watcher.run(stopping))
        try:
            await w.create("e1", "c1", variant(count=2))
            blue = w.endpoint("e1").variants[0].fleet_id
            w.add_config("c2", variant(model="m2", count=2))
            handle = await w.start(
                "UpdateEndpoint",
                {
                    "EndpointName": "e1",
                    "EndpointConfigName": "c2",
                    "DeploymentConfig": canary(wait=60, size=1, final=0, alarms=("errors",)),
                },
            )
            await wait_for(handle, lambda v: v.baking)
            await asyncio.sleep(1.0)  # the watcher is polling this deployment by now
            tripped = time.time()
            w.alarms.set_state("errors", "ALARM", "5XX rate above threshold")
            deadline = time.monotonic() + 10
            while not any(at > tripped for at, _ in w.router.applied):
                assert time.monotonic() < deadline, "no rollback traffic change"
                await asyncio.sleep(0.01)
            first = next((at, routing) for at, routing in w.router.applied if at > tripped)
            reaction = first[0] - tripped
            print(f"alarm to first rollback traffic change: {reaction:.3f} s")
            assert {f.fleet_id for v in first[1].variants for f in v.fleets} == {blue}
            assert reaction <= 2.0
            with pytest.raises(WorkflowFailureError):
                await asyncio.wait_for(handle.result(), timeout=30)
        finally:
            stopping.set()
            await asyncio.wait_for(watching, timeout=5)
