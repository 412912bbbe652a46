"""The registry event source: a baseline first, then one event per status change, per new
entry of a deployment's log, and per endpoint that disappears."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from greenshift.events.model import DELETED, DEPLOYMENT_STATE_CHANGE, ENDPOINT_STATE_CHANGE
from greenshift.events.source import RegistryEventSource
from greenshift.registry.records import DeploymentEvent, DeploymentRecord, EndpointRecord
from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from greenshift.status import DeploymentOutcome, EndpointStatus

S = Settings()
T0 = datetime(2026, 1, 2, tzinfo=UTC)


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[SqlRegistry]:
    registry = SqlRegistry(f"sqlite:///{tmp_path / 'r.db'}", arn_for=S.arn)
    yield registry
    registry.close()


def _create(reg: SqlRegistry, name: str, did: str) -> None:
    reg.create_endpoint(
        EndpointRecord(
            name=name,
            arn=S.arn("endpoint", name),
            status=EndpointStatus.CREATING,
            config_name="c1",
            config_snapshot={},
            created_at=T0,
            last_modified=T0,
        ),
        DeploymentRecord(
            deployment_id=did,
            endpoint=name,
            operation="CreateEndpoint",
            workflow_id=f"endpoint/{name}",
            request={},
            started_at=T0,
        ),
    )


def test_events_follow_the_registry(reg: SqlRegistry) -> None:
    published: list[dict[str, Any]] = []
    source = RegistryEventSource(reg, S, published.append)
    _create(reg, "old", "d0")
    assert source.poll_once() == 0  # the baseline replays nothing
    _create(reg, "e1", "d1")
    reg.append_event(
        DeploymentEvent(
            deployment_id="d1",
            endpoint="e1",
            at=T0,
            type="StepStarted",
            message="Launching 2 instance(s).",
            key="d1/1",
        )
    )
    source.poll_once()
    kinds = [(e["detail-type"], e["detail"]["EndpointName"]) for e in published]
    assert kinds == [(ENDPOINT_STATE_CHANGE, "e1"), (DEPLOYMENT_STATE_CHANGE, "e1")]
    published.clear()
    assert source.poll_once() == 0  # nothing new, nothing sent
    reg.finish_operation(
        "e1", "d1", status=EndpointStatus.IN_SERVICE, outcome=DeploymentOutcome.SUCCEEDED
    )
    source.poll_once()
    assert [e["detail"]["EndpointStatus"] for e in published] == ["InService"]
    published.clear()
    reg.delete_endpoint_record("old", "d0")
    source.poll_once()
    assert [e["detail"]["EndpointStatus"] for e in published] == [DELETED]
