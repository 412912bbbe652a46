"""The two doors to a deployment admit the same requests with the same plan (issue 13).

Over generated UpdateEndpoint requests and endpoint states, the API (PlanDeployment, then
UpdateEndpoint) and the workflow's prepare activity (started from Temporal directly, on an
identical registry) either both accept with equal plans, or both refuse with the same error code
and message. For an accepted request the workflow the API started prepares the very plan that
PlanDeployment showed.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.models import PrepareInput
from activities.prepare import PrepareActivities
from greenshift.api.context import ApiContext
from greenshift.api.deployments import plan_deployment
from greenshift.api.endpoints import update_endpoint
from greenshift.errors import GreenshiftError
from greenshift.planning.model import Plan
from greenshift.registry.records import (
    DeploymentRecord,
    EndpointConfigRecord,
    EndpointRecord,
    ModelRecord,
    VariantState,
)
from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from greenshift.status import DeploymentOutcome, EndpointStatus
from tests.fakes import FakeAlarms
from tests.workflow.harness import all_at_once, canary, linear, rolling

AT = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = Settings(max_instances=9, max_instances_per_endpoint=7)


@dataclass
class Starter:
    """The API's WorkflowStarter: records what it was asked to start, starts nothing."""

    started: list[tuple[str, str]] = field(default_factory=list)

    async def start(
        self, workflow: str, request: dict[str, Any], *, workflow_id: str, deployment_id: str
    ) -> None:
        self.started.append((workflow, deployment_id))

    async def update(self, workflow_id: str, update: str, arg: dict[str, Any]) -> Any:
        raise AssertionError("not used")

    async def query(self, workflow_id: str, query: str) -> Any:
        raise AssertionError("not used")


@dataclass(frozen=True)
class World:
    status: EndpointStatus
    busy: bool
    serving: list[dict[str, Any]]  # the deployed config's variants
    new: list[dict[str, Any]] | None  # the new config's variants (None: the config is missing)
    request: dict[str, Any]


def _variant(name: str, model: str, count: int, startup: int | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "VariantName": name,
        "ModelName": model,
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": count,
        "InitialVariantWeight": 1.0,
    }
    if startup is not None:
        doc["ContainerStartupHealthCheckTimeoutInSeconds"] = startup
    return doc


def _variants(names: list[str], models: list[str]) -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(
        st.builds(
            _variant,
            st.sampled_from(names),
            st.sampled_from(models),
            st.integers(1, 5),
            st.none() | st.sampled_from([60, 600]),
        ),
        min_size=1,
        max_size=2,
        unique_by=lambda v: v["VariantName"],
    )


ALARMS = st.lists(st.sampled_from(["ok", "gone"]), max_size=2, unique=True).map(tuple)
DEPLOYMENT_CONFIGS = st.none() | st.one_of(
    st.builds(lambda s, a: canary(size=s, alarms=a), st.integers(1, 3), ALARMS),
    st.builds(lambda p, a: linear(percent=p, alarms=a), st.sampled_from([25, 50]), ALARMS),
    st.builds(lambda a: all_at_once(alarms=a), ALARMS),
    st.builds(lambda b, a: rolling(batch=b, alarms=a), st.integers(1, 3), ALARMS),
)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    status = draw(
        st.sampled_from(
            [
                EndpointStatus.IN_SERVICE,
                EndpointStatus.IN_SERVICE,
                EndpointStatus.UPDATE_ROLLBACK_FAILED,
                EndpointStatus.FAILED,
                EndpointStatus.ROLLING_BACK,
            ]
        )
    )
    request: dict[str, Any] = {
        "EndpointName": draw(st.sampled_from(["e1", "e1", "e1", "nope"])),
        "EndpointConfigName": draw(st.sampled_from(["c2", "c2", "c2", "C1"])),
    }
    dc = draw(DEPLOYMENT_CONFIGS)
    if dc is not None:
        request["DeploymentConfig"] = dc
    if draw(st.booleans()):
        request["RetainDeploymentConfig"] = draw(st.booleans())
    return World(
        status=status,
        busy=draw(st.booleans()) and draw(st.booleans()),
        serving=draw(_variants(["A", "B"], ["m1"])),
        new=draw(st.none() | _variants(["A", "B", "C"], ["m1", "m2", "m2", "missing"])),
        request=request,
    )


def seed(registry: SqlRegistry, world: World) -> None:
    """e1 serving config c1 (its snapshot kept), c2 to deploy, models m1 and m2."""
    for name in ("m1", "m2"):
        registry.create_model(
            ModelRecord(
                name=name,
                arn=SETTINGS.arn("model", name),
                created_at=AT,
                spec={
                    "ModelName": name,
                    "PrimaryContainer": {"Image": "img"},
                    "ExecutionRoleArn": "arn:aws:iam::000000000000:role/r",
                },
            )
        )
    configs = {"c1": world.serving} | ({"c2": world.new} if world.new is not None else {})
    for name, variants in configs.items():
        registry.create_endpoint_config(
            EndpointConfigRecord(
                name=name,
                arn=SETTINGS.arn("endpoint-config", name),
                created_at=AT,
                spec={"EndpointConfigName": name, "ProductionVariants": variants},
            )
        )
    c1 = registry.get_endpoint_config("c1")
    m1 = registry.get_model("m1")
    assert c1 is not None and m1 is not None
    registry.create_endpoint(
        EndpointRecord(
            name="e1",
            arn=SETTINGS.arn("endpoint", "e1"),
            status=EndpointStatus.CREATING,
            config_name="c1",
            config_snapshot={"EndpointConfig": c1.spec, "Models": {"m1": m1.spec}},
            current_deployment_id="create-1",
            created_at=AT,
            last_modified=AT,
        ),
        DeploymentRecord(
            deployment_id="create-1",
            endpoint="e1",
            operation="CreateEndpoint",
            workflow_id="w",
            request={},
            started_at=AT,
        ),
    )
    record = registry.finish_operation(
        "e1",
        "create-1",
        status=world.status,
        outcome=DeploymentOutcome.SUCCEEDED,
        variants=[
            VariantState(
                variant=v["VariantName"],
                model_name=v["ModelName"],
                instance_type=v["InstanceType"],
                fleet_id=f"e1.{v['VariantName']}.blue",
                current_weight=1,
                desired_weight=1,
                current_instance_count=v["InitialInstanceCount"],
                desired_instance_count=v["InitialInstanceCount"],
            )
            for v in world.serving
        ],
    )
    if world.busy:
        registry.save_endpoint(record.model_copy(update={"current_deployment_id": "busy"}))


Outcome = tuple[str, str] | Plan  # a refusal (code, message), or the plan admitted


def prepare(registry: SqlRegistry, request: dict[str, Any], deployment_id: str) -> Outcome:
    acts = PrepareActivities(registry, SETTINGS, FakeAlarms(["ok"]))
    data = PrepareInput(
        request=request, deployment_id=deployment_id, workflow_id="endpoint/e1", started_at=AT
    )
    try:
        return ActivityEnvironment().run(acts.prepare_update, data).plan
    except ApplicationError as exc:
        return (str(exc.type), exc.message)


def api(registry: SqlRegistry, request: dict[str, Any]) -> tuple[Outcome, Starter]:
    """PlanDeployment's plan if UpdateEndpoint accepts the request, else UpdateEndpoint's
    refusal."""
    starter = Starter()
    ctx = ApiContext(SETTINGS, registry, starter, alarms=FakeAlarms(["ok"]), clock=lambda: AT)

    async def call() -> Outcome:
        # PlanDeployment shows the status beside the plan; UpdateEndpoint is the one to refuse.
        try:
            shown: dict[str, Any] | None = await plan_deployment(ctx, request)
        except GreenshiftError:
            shown = None
        try:
            await update_endpoint(ctx, request)
        except GreenshiftError as exc:
            return (exc.code, exc.message)
        assert shown is not None, "UpdateEndpoint accepted what PlanDeployment refused"
        return Plan.model_validate(shown["Plan"])

    return anyio.run(call), starter


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(worlds())
def test_the_api_and_the_workflow_admit_alike(world: World) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        via_api = SqlRegistry(f"sqlite:///{Path(tmp) / 'api.db'}", arn_for=SETTINGS.arn)
        via_temporal = SqlRegistry(f"sqlite:///{Path(tmp) / 'tmp.db'}", arn_for=SETTINGS.arn)
        try:
            seed(via_api, world)
            seed(via_temporal, world)
            shown, starter = api(via_api, world.request)
            direct = prepare(via_temporal, world.request, "direct-1")
            assert shown == direct
            if isinstance(shown, Plan):
                # The workflow the API started plans what PlanDeployment showed.
                [(workflow, deployment_id)] = starter.started
                assert workflow == "UpdateEndpoint"
                assert prepare(via_api, world.request, deployment_id) == shown
            else:
                assert starter.started == []
        finally:
            via_api.close()
            via_temporal.close()


def test_generated_worlds_reach_both_outcomes() -> None:
    """The property above is not vacuous: worlds of its shape reach both outcomes (a fixed
    example of each, the refusal a quota's, decided on the API's side)."""
    accepted = World(
        EndpointStatus.IN_SERVICE,
        False,
        [_variant("A", "m1", 2, 600)],
        [_variant("A", "m2", 2, None)],
        {"EndpointName": "e1", "EndpointConfigName": "c2", "DeploymentConfig": canary()},
    )
    refused = World(
        EndpointStatus.IN_SERVICE,
        False,
        [_variant("A", "m1", 2, None)],
        [_variant("A", "m2", 6, None)],  # 2 + 6 at the peak, over max_instances_per_endpoint
        {"EndpointName": "e1", "EndpointConfigName": "c2", "DeploymentConfig": all_at_once()},
    )
    with tempfile.TemporaryDirectory() as tmp:
        for i, (world, expected) in enumerate([(accepted, "plan"), (refused, "limit")]):
            registry = SqlRegistry(f"sqlite:///{Path(tmp) / f'{i}.db'}", arn_for=SETTINGS.arn)
            try:
                seed(registry, world)
                outcome, _ = api(registry, world.request)
                got = "plan" if isinstance(outcome, Plan) else outcome[0]
                assert got == {"plan": "plan", "limit": "ResourceLimitExceeded"}[expected]
            finally:
                registry.close()
