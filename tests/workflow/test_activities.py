"""Activity tests (no Temporal server): the registry activities validate and are idempotent,
so a retried attempt after a lost response changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.alarms import AlarmActivities
from activities.fleet import FleetActivities
from activities.models import AlarmCheckInput, PrepareInput, StepInput
from activities.prepare import PrepareActivities
from greenshift.planning.model import ProvisionStep
from greenshift.registry.records import DeploymentRecord, EndpointRecord, VariantState
from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from greenshift.status import DeploymentOutcome, EndpointStatus
from tests.fakes import FakeAlarms, FakeFleet, FakeRouter
from tests.workflow.harness import World, canary, variant

AT = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[SqlRegistry]:
    reg = SqlRegistry(f"sqlite:///{tmp_path / 'r.db'}", arn_for=Settings().arn)
    yield reg
    reg.close()


def seed(registry: SqlRegistry, settings: Settings) -> None:
    """e1 InService on c1 (variant A, 2 instances on fleet e1.A.blue); c2 ready to deploy."""
    w = World(None, settings, registry, FakeFleet(), FakeRouter(), FakeAlarms(), "q")  # type: ignore[arg-type]
    w.add_config("c1", variant(count=2))
    w.add_config("c2", variant(model="m2", count=2))
    config = registry.get_endpoint_config("c1")
    assert config is not None
    record = EndpointRecord(
        name="e1",
        arn=settings.arn("endpoint", "e1"),
        status=EndpointStatus.CREATING,
        config_name="c1",
        config_snapshot={"EndpointConfig": config.spec, "Models": {}},
        current_deployment_id="create-1",
        created_at=AT,
        last_modified=AT,
    )
    creation = DeploymentRecord(
        deployment_id="create-1",
        endpoint="e1",
        operation="CreateEndpoint",
        workflow_id="w",
        request={},
        started_at=AT,
    )
    registry.create_endpoint(record, creation)
    registry.finish_operation(
        "e1",
        "create-1",
        status=EndpointStatus.IN_SERVICE,
        outcome=DeploymentOutcome.SUCCEEDED,
        variants=[
            VariantState(
                variant="A",
                model_name="m1",
                instance_type="ml.m5.large",
                fleet_id="e1.A.blue",
                current_weight=1,
                desired_weight=1,
                current_instance_count=2,
                desired_instance_count=2,
            )
        ],
    )


def test_prepare_update_is_idempotent_and_takes_the_endpoint(registry: SqlRegistry) -> None:
    settings = Settings()
    seed(registry, settings)
    alarms = FakeAlarms(["errors"])
    acts = PrepareActivities(registry, settings, alarms)
    data = PrepareInput(
        request={
            "EndpointName": "e1",
            "EndpointConfigName": "c2",
            "DeploymentConfig": canary(alarms=("errors",)),
        },
        deployment_id="dep-1",
        workflow_id="endpoint/e1",
        started_at=AT,
    )
    env = ActivityEnvironment()
    first = env.run(acts.prepare_update, data)
    again = env.run(acts.prepare_update, data)  # a retry after a lost response
    assert first == again
    assert first.fleets["blue/A"] == "e1.A.blue"
    endpoint = registry.get_endpoint("e1")
    assert endpoint is not None and endpoint.status is EndpointStatus.UPDATING
    assert [d.deployment_id for d in registry.list_deployments("e1")].count("dep-1") == 1
    other = data.model_copy(update={"deployment_id": "dep-2"})
    with pytest.raises(ApplicationError) as refused:
        env.run(acts.prepare_update, other)
    assert refused.value.type == "ValidationException" and refused.value.non_retryable
    assert "in-progress" in refused.value.message


def test_provision_twice_launches_once(registry: SqlRegistry) -> None:
    settings = Settings()
    seed(registry, settings)
    acts = PrepareActivities(registry, settings, FakeAlarms())
    env = ActivityEnvironment()
    prepared = env.run(
        acts.prepare_update,
        PrepareInput(
            request={"EndpointName": "e1", "EndpointConfigName": "c2"},
            deployment_id="dep-1",
            workflow_id="w",
            started_at=AT,
        ),
    )
    fleet = FakeFleet()
    step = next(p.step for p in prepared.plan.steps if isinstance(p.step, ProvisionStep))
    data = StepInput(ref=prepared.ref, step=step, fleets=prepared.fleets)
    fleets = FleetActivities(fleet, registry)
    env.run(fleets.provision, data)
    env.run(fleets.provision, data)
    assert len(fleet.calls) == 2 and len(fleet.changes) == 1
    record = registry.get_fleet(prepared.fleets["green/A"])
    assert record is not None and record.desired_count == 2


def test_alarm_check_reports_only_alarm_state() -> None:
    alarms = FakeAlarms(["a", "b"])
    alarms.set_state("a", "INSUFFICIENT_DATA")
    acts = AlarmActivities(alarms)
    env = ActivityEnvironment()
    assert env.run(acts.check_alarms, AlarmCheckInput(alarms=["a", "b"])).tripped is None
    alarms.set_state("b", "ALARM", "too many 5XX")
    result = env.run(acts.check_alarms, AlarmCheckInput(alarms=["a", "b"]))
    assert result.tripped is not None and result.tripped.name == "b"
    assert result.states == {"a": "INSUFFICIENT_DATA", "b": "ALARM"}


class CountingJudges:
    """A judge source that counts how often it is asked which alarms are judges."""

    def __init__(self, judges: list[str]) -> None:
        self.judges = judges
        self.asked = 0

    def verdicts(self, request: object, now: datetime) -> list[object]:
        raise AssertionError("the alarm check never judges")

    def judge_alarms(self, names: list[str]) -> list[str]:
        self.asked += 1
        return [n for n in names if n in self.judges]


def test_the_alarm_check_asks_which_alarms_are_judges_only_when_told() -> None:
    """Only the end of a bake needs the answer (it decides whether the bake is judged): the
    other checks (before the first instance, stale rechecks, extended bakes) skip the read."""
    judges = CountingJudges(["j"])
    acts = AlarmActivities(FakeAlarms(["a", "j"]), judges=judges)  # type: ignore[arg-type]
    env = ActivityEnvironment()
    assert env.run(acts.check_alarms, AlarmCheckInput(alarms=["a", "j"])).judges is None
    assert judges.asked == 0
    told = env.run(acts.check_alarms, AlarmCheckInput(alarms=["a", "j"], judges=True))
    assert (told.judges, judges.asked) == (["j"], 1)
