"""A deployment world for workflow tests: the real SqlRegistry on SQLite in a temporary
directory, the fakes of tests/fakes.py, and a worker on a fresh task queue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from greenshift.registry.records import EndpointConfigRecord, EndpointRecord, ModelRecord
from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from tests.fakes import FakeAlarms, FakeFleet, FakeRouter, FleetFaults
from worker.build import Dependencies, build_worker

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
        return await self.client.start_workflow(
            workflow,
            args=[request, *args],
            id=f"endpoint/{request['EndpointName']}/{uuid.uuid4().hex[:6]}",
            task_queue=self.task_queue,
        )

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
    client: Client, tmp: Path, faults: FleetFaults | None = None, alarms: list[str] | None = None
) -> AsyncIterator[World]:
    settings = Settings(home=tmp, task_queue=f"greenshift-{uuid.uuid4().hex[:8]}")
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
        settings=settings, registry=registry, fleet=w.fleet, router=w.router, alarms=w.alarms
    )
    try:
        async with build_worker(client, deps):
            yield w
    finally:
        registry.close()
