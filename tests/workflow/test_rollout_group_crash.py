"""On a real Temporal dev server: the worker running a rollout group is SIGKILLed mid-wave and
a new one finishes the group correctly, no step done twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from greenshift.groups.model import GroupStatus, GroupView, group_workflow_id
from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from tests.fakes import FakeAlarms, FakeFleet, FakeRouter
from tests.workflow.harness import World, canary, variant
from tests.workflow.test_dev_server import spawn_worker, stop, target_of
from workflows.rollout_group import GROUP_QUERY


@pytest.mark.timeout(150)
async def test_worker_killed_mid_group_and_the_group_finishes(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    queue = f"greenshift-{uuid.uuid4().hex[:8]}"
    settings = Settings(home=tmp_path, task_queue=queue)
    registry = SqlRegistry(f"sqlite:///{tmp_path / 'registry.db'}", arn_for=settings.arn)
    w = World(dev_env.client, settings, registry, FakeFleet(), FakeRouter(), FakeAlarms(), queue)
    procs = [await spawn_worker(target_of(dev_env), queue, tmp_path)]
    suffix = uuid.uuid4().hex[:6]
    names = [f"{n}-{suffix}" for n in ("a", "b", "c")]
    try:
        for name in names:
            await w.create(name, f"{name}-v1", variant(model=f"{name}-m1", count=2))
            w.add_config(f"{name}-v2", variant(model=f"{name}-m2", count=2))

        def update(name: str) -> dict[str, object]:
            return {
                "EndpointName": name,
                "EndpointConfigName": f"{name}-v2",
                "DeploymentConfig": canary(wait=3, size=1, final=1),
            }

        group = f"crash-{suffix}"
        handle = await dev_env.client.start_workflow(
            "RolloutGroup",
            {
                "RolloutGroupName": group,
                "Waves": [
                    {"Updates": [update(names[0]), update(names[1])]},
                    {"Updates": [update(names[2])]},
                ],
            },
            id=group_workflow_id(group),
            task_queue=queue,
        )
        # Kill the worker while the first wave's updates run.
        deadline = time.monotonic() + 30
        while True:
            view = await handle.query(GROUP_QUERY, result_type=GroupView)
            if any(o.Status == "Updating" for o in view.Endpoints):
                break
            assert time.monotonic() < deadline, view
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        procs[0].kill()
        await asyncio.wait_for(procs[0].wait(), timeout=10)
        procs.append(await spawn_worker(target_of(dev_env), queue, tmp_path))
        result = GroupView.model_validate(await asyncio.wait_for(handle.result(), timeout=90))
    finally:
        for proc in procs:
            await stop(proc)
    fleet = FakeFleet(tmp_path / "fleet.json")
    endpoints = {n: registry.get_endpoint(n) for n in names}
    holders = [registry.endpoint_holder(n) for n in names]
    registry.close()
    assert result.Status is GroupStatus.SUCCEEDED, result
    assert all(e is not None and e.config_name == f"{n}-v2" for n, e in endpoints.items())
    assert holders == [None, None, None]
    # Every launch and every stop happened once, across both workers.
    assert len({tuple(c) for c in fleet.calls}) == len(fleet.calls), fleet.calls
    assert [c[0] for c in fleet.calls].count("down") == 3
