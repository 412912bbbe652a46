"""A deployment world for workflow tests: the real SqlRegistry on SQLite in a temporary
directory, the fakes of tests/fakes.py, and a worker on a fresh task queue."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from greenshift.hosts.service import HostService, advertisement
from greenshift.hosts.store import HostStore
from greenshift.planning.model import Plan
from greenshift.registry.records import EndpointConfigRecord, EndpointRecord, ModelRecord
from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from tests.fakes import FakeAlarms, FakeFleet, FakeHostAgent, FakeRouter, FleetFaults
from worker.build import Dependencies, build_worker
from workflows.messages import PROGRESS, ProgressView

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def variant(
    name: str = "A",
    model: str = "m1",
    count: int = 2,
    weight: float = 1.0,
    startup: int | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "VariantName": name,
        "ModelName": model,
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": count,
        "InitialVariantWeight": weight,
    }
    if startup is not None:
        doc["ContainerStartupHealthCheckTimeoutInSeconds"] = startup
    return doc


@dataclass
class World:
    client: Client
    settings: Settings
    registry: SqlRegistry
    fleet: FakeFleet
    router: FakeRouter
    alarms: FakeAlarms
    task_queue: str
    started: list[WorkflowHandle] = field(default_factory=list)

    def add_model(self, name: str) -> None:
        self.registry.create_model(
            ModelRecord(
                name=name,
                arn=self.settings.arn("model", name),
                created_at=NOW,
                spec={
                    "ModelName": name,
                    "PrimaryContainer": {"Image": f"img-{name}", "ModelDataUrl": "file:///m"},
                },
            )
        )

    def add_config(self, name: str, *variants: dict[str, Any]) -> None:
        for v in variants:
            if self.registry.get_model(v["ModelName"]) is None:
                self.add_model(v["ModelName"])
        self.registry.create_endpoint_config(
            EndpointConfigRecord(
                name=name,
                arn=self.settings.arn("endpoint-config", name),
                created_at=NOW,
                spec={"EndpointConfigName": name, "ProductionVariants": list(variants)},
            )
        )

    async def start(self, workflow: str, request: dict[str, Any], *args: Any) -> WorkflowHandle:
        handle = await self.client.start_workflow(
            workflow,
            args=[request, *args],
            id=f"endpoint/{request.get('EndpointName')}/{uuid.uuid4().hex[:6]}",
            task_queue=self.task_queue,
        )
        self.started.append(handle)
        return handle

    async def terminate_running(self) -> None:
        """Nothing a test started outlives its worker."""
        for handle in self.started:
            description = await handle.describe()
            if description.status == WorkflowExecutionStatus.RUNNING:
                try:
                    await handle.terminate("test over")
                except RPCError as error:  # it ended between the two calls
                    if error.status != RPCStatusCode.NOT_FOUND:
                        raise

    async def run(self, workflow: str, request: dict[str, Any]) -> Any:
        handle = await self.start(workflow, request)
        return await handle.result()

    async def create(self, endpoint: str, config: str, *variants: dict[str, Any]) -> None:
        self.add_config(config, *(variants or (variant(),)))
        await self.run("CreateEndpoint", {"EndpointName": endpoint, "EndpointConfigName": config})

    def endpoint(self, name: str) -> EndpointRecord:
        record = self.registry.get_endpoint(name)
        assert record is not None
        return record


@asynccontextmanager
async def world(
    client: Client,
    tmp: Path,
    faults: FleetFaults | None = None,
    alarms: list[str] | None = None,
    judges: Any = None,
    local_host: bool = False,
) -> AsyncIterator[World]:
    """`local_host`: this machine registered as a host, its queue served by a host agent over
    the world's fake fleet, as `greenshift up` runs its worker (provisions and terminates are
    placed, then done on the host's own queue)."""
    # The workflows enforce the API's quotas (greenshift/admission.py); the largest plans here (20
    # instances blue/green: 40 at the peak) need more than the default per-endpoint limit.
    settings = Settings(
        home=tmp, task_queue=f"greenshift-{uuid.uuid4().hex[:8]}", max_instances_per_endpoint=64
    )
    registry = SqlRegistry(f"sqlite:///{tmp / 'registry.db'}", arn_for=settings.arn)
    w = World(
        client=client,
        settings=settings,
        registry=registry,
        fleet=FakeFleet(faults=faults),
        router=FakeRouter(),
        alarms=FakeAlarms(alarms),
        task_queue=settings.task_queue,
    )
    deps = Dependencies(
        settings=settings,
        registry=registry,
        fleet=w.fleet,
        router=w.router,
        alarms=w.alarms,
        judges=judges,
    )
    stop = asyncio.Event()
    host: asyncio.Task[None] | None = None
    if local_host:
        deps.hosts = HostStore(f"sqlite:///{tmp / 'registry.db'}")
        deps.fleet = w.fleet = FakeHostAgent(registry, settings.host, faults=faults)
    try:
        async with build_worker(client, deps):
            if deps.hosts is not None:
                host_record = advertisement(settings.host, settings.task_queue)
                deps.hosts.register(host_record)  # before the test's first step
                service = HostService(
                    client,
                    w.fleet,  # type: ignore[arg-type]  # FakeHostAgent: this host's agent
                    registry,
                    deps.hosts,
                    host_record,
                    settings.host_heartbeat_seconds,
                )
                host = asyncio.create_task(service.run(stop))
            try:
                yield w
            finally:
                await w.terminate_running()
                stop.set()
                if host is not None:
                    await asyncio.wait_for(host, 30)
    finally:
        if deps.hosts is not None:
            deps.hosts.close()
        registry.close()


def canary(
    wait: int = 300,
    size: int = 1,
    final: int = 600,
    timeout: int | None = None,
    alarms: tuple[str, ...] = (),
) -> dict[str, Any]:
    return _blue_green(
        {
            "Type": "CANARY",
            "WaitIntervalInSeconds": wait,
            "CanarySize": {"Type": "INSTANCE_COUNT", "Value": size},
        },
        final,
        timeout,
        alarms,
    )


def linear(
    wait: int = 60,
    percent: int = 50,
    final: int = 120,
    timeout: int | None = None,
    alarms: tuple[str, ...] = (),
) -> dict[str, Any]:
    return _blue_green(
        {
            "Type": "LINEAR",
            "WaitIntervalInSeconds": wait,
            "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": percent},
        },
        final,
        timeout,
        alarms,
    )


def all_at_once(
    wait: int = 60, final: int = 120, timeout: int | None = None, alarms: tuple[str, ...] = ()
) -> dict[str, Any]:
    return _blue_green(
        {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": wait}, final, timeout, alarms
    )


def rolling(
    batch: int = 1,
    wait: int = 60,
    rollback_batch: int | None = None,
    timeout: int | None = None,
    alarms: tuple[str, ...] = (),
) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": batch},
        "WaitIntervalInSeconds": wait,
    }
    if rollback_batch is not None:
        policy["RollbackMaximumBatchSize"] = {"Type": "INSTANCE_COUNT", "Value": rollback_batch}
    if timeout is not None:
        policy["MaximumExecutionTimeoutInSeconds"] = timeout
    return {"RollingUpdatePolicy": policy, **_rollback(alarms)}


def _blue_green(
    routing: dict[str, Any], final: int, timeout: int | None, alarms: tuple[str, ...]
) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "TrafficRoutingConfiguration": routing,
        "TerminationWaitInSeconds": final,
    }
    if timeout is not None:
        policy["MaximumExecutionTimeoutInSeconds"] = timeout
    return {"BlueGreenUpdatePolicy": policy, **_rollback(alarms)}


def _rollback(alarms: tuple[str, ...]) -> dict[str, Any]:
    if not alarms:
        return {}
    return {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in alarms]}}


async def wait_for(
    handle: WorkflowHandle,
    predicate: Callable[[ProgressView], bool],
    env: WorkflowEnvironment | None = None,
    within: float = 20.0,
) -> ProgressView:
    """Poll the `progress` query until `predicate` holds. Time is not skipped meanwhile, except
    with `env`: then each bake that does not satisfy `predicate` is skipped to its end."""
    deadline = time.monotonic() + within
    while True:
        try:
            view = await handle.query(PROGRESS, result_type=ProgressView)
        except RPCError as error:
            # A run being started (a rollout group's child, a new run of an endpoint's id)
            # may not be queryable for a moment yet: look again, within the same bound.
            if error.status is not RPCStatusCode.NOT_FOUND or time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.02)
            continue
        if predicate(view):
            return view
        assert time.monotonic() < deadline, f"still {view}"
        if env is not None and view.baking and view.bake_ends_at is not None:
            left = (view.bake_ends_at - await env.get_current_time()).total_seconds()
            await env.sleep(max(left, 0) + 0.5)
        else:
            await asyncio.sleep(0.02)


def green_shares(router: FakeRouter, endpoint: str, green_fleet: str) -> list[float]:
    """The green fleet's share of its variant's traffic at every routing change."""
    shares = []
    for _, routing in router.applied:
        if routing.endpoint != endpoint:
            continue
        share = sum(
            f.share for v in routing.variants for f in v.fleets if f.fleet_id == green_fleet
        )
        shares.append(round(share, 4))
    return shares


def peak_instances(fleet: FakeFleet) -> int:
    sizes: dict[str, int] = {}
    peak = 0
    for _, fleet_id, _, after in fleet.changes:
        sizes[fleet_id] = after
        peak = max(peak, sum(sizes.values()))
    return peak


async def plan_of(w: World, deployment_id: str, within: float = 20.0) -> Plan:
    """The plan the deployment recorded, once its prepare activity has run."""
    deadline = time.monotonic() + within
    while True:
        record = w.registry.get_deployment(deployment_id)
        if record is not None and record.plan is not None:
            return Plan.model_validate(record.plan)
        assert time.monotonic() < deadline, f"no plan for {deployment_id}"
        await asyncio.sleep(0.02)


def bake_indices(plan: Plan) -> list[int]:
    return [p.index for p in plan.steps if p.step.kind == "bake"]
