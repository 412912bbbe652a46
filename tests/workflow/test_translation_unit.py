"""Pure unit tests: a TrafficStep becomes the registry's EndpointRouting, and a plan's step
becomes DescribeEndpoint's PendingDeploymentSummary."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from activities.planner import SagemakerPlanner, serving_specs
from activities.progress import pending_at
from activities.routing import routing_for
from greenshift.contracts.sagemaker_shapes import UpdateEndpointInput
from greenshift.planning.model import TrafficStep, VariantTraffic
from greenshift.registry.records import (
    EndpointConfigRecord,
    EndpointRecord,
    FleetRoute,
    ModelRecord,
    VariantState,
)
from greenshift.status import EndpointStatus, VariantStatus

AT = datetime(2026, 1, 1, tzinfo=UTC)
FLEETS = {"blue/A": "e1.A.old", "green/A": "e1.A.new", "blue/B": "e1.B.old", "green/B": "e1.B.new"}


def test_traffic_step_to_routing_uses_both_fleets_and_drops_empty_shares() -> None:
    step = TrafficStep(
        variants={
            "A": VariantTraffic(weight=2.0, blue=0.75, green=0.25),
            "B": VariantTraffic(weight=1.0, blue=0.0, green=1.0),
        },
        message="canary",
    )
    # Strategies are per fleet: blue keeps its config's, green gets the new config's.
    routing = routing_for("e1", step, FLEETS, {"blue/A": "RANDOM", "green/B": "RANDOM"})
    assert routing.endpoint == "e1"
    a, b = routing.variants
    assert (a.variant, a.weight, a.routing_strategy) == ("A", 2.0, "LEAST_OUTSTANDING_REQUESTS")
    assert a.fleets == [
        FleetRoute(fleet_id="e1.A.old", share=0.75, routing_strategy="RANDOM"),
        FleetRoute(fleet_id="e1.A.new", share=0.25, routing_strategy="LEAST_OUTSTANDING_REQUESTS"),
    ]
    assert (b.routing_strategy, b.fleets) == (
        "RANDOM",
        [FleetRoute(fleet_id="e1.B.new", share=1, routing_strategy="RANDOM")],
    )


def test_a_plan_names_each_fleets_routing_strategy() -> None:
    from greenshift.planning.model import Plan, Strategy, VariantSpec

    spec = {"model_name": "m", "instance_type": "ml.m5.large", "instance_count": 1, "weight": 1}
    plan = Plan(
        strategy=Strategy.ALL_AT_ONCE,
        blue=(VariantSpec(variant="A", **spec),),
        green=(VariantSpec(variant="A", routing_strategy="RANDOM", **spec),),
        steps=(),
        peak_instances=2,
        min_duration_seconds=0,
    )
    assert plan.routing_strategies() == {
        "blue/A": "LEAST_OUTSTANDING_REQUESTS",
        "green/A": "RANDOM",
    }


def test_traffic_step_for_a_fleet_without_id_is_a_bug() -> None:
    step = TrafficStep(variants={"C": VariantTraffic(weight=1, blue=0, green=1)}, message="x")
    with pytest.raises(KeyError):
        routing_for("e1", step, FLEETS)


def endpoint(count: int) -> EndpointRecord:
    config = {
        "EndpointConfigName": "c1",
        "ProductionVariants": [
            {
                "VariantName": "A",
                "ModelName": "m1",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": count,
            }
        ],
    }
    return EndpointRecord(
        name="e1",
        arn="arn",
        status=EndpointStatus.IN_SERVICE,
        config_name="c1",
        config_snapshot={"EndpointConfig": config, "Models": {}},
        variants=[
            VariantState(
                variant="A",
                model_name="m1",
                instance_type="ml.m5.large",
                fleet_id="e1.A.old",
                current_weight=1,
                desired_weight=1,
                current_instance_count=count,
                desired_instance_count=count,
            )
        ],
        created_at=AT,
        last_modified=AT,
    )


def test_serving_specs_take_the_current_desired_counts() -> None:
    record = endpoint(2)
    record.variants[0].desired_instance_count = 5
    assert serving_specs(record)[0].instance_count == 5


def test_pending_deployment_follows_the_plan() -> None:
    config = EndpointConfigRecord(
        name="c2",
        arn="arn2",
        created_at=AT,
        spec={
            "EndpointConfigName": "c2",
            "ProductionVariants": [
                {
                    "VariantName": "A",
                    "ModelName": "m2",
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 4,
                }
            ],
        },
    )
    models = {"m2": ModelRecord(name="m2", arn="a", created_at=AT, spec={})}
    request = UpdateEndpointInput.from_wire(
        {
            "EndpointName": "e1",
            "EndpointConfigName": "c2",
            "DeploymentConfig": {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "CANARY",
                        "WaitIntervalInSeconds": 300,
                        "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
                    }
                }
            },
        }
    )
    plan = SagemakerPlanner().plan_update(endpoint(4), request, config, models)
    bake = next(p for p in plan.steps if p.step.kind == "bake")
    pending = pending_at(
        plan,
        config_name="c2",
        start_time=AT,
        index=bake.index,
        phase="Baking",
        at=AT,
        message=bake.step.message,
    )
    (variant,) = pending.variants
    assert (variant.current_instance_count, variant.desired_instance_count) == (4, 4)
    assert variant.current_weight == pytest.approx(0.25)
    (status,) = variant.statuses
    assert status.status == VariantStatus.BAKING.value
    assert status.message.startswith("Baking for 300 seconds (WaitIntervalInSeconds)")
    first = pending_at(
        plan,
        config_name="c2",
        start_time=AT,
        index=0,
        phase="Provisioning",
        at=AT,
        message=plan.steps[0].step.message,
    )
    assert first.variants[0].current_instance_count == 0
    assert first.variants[0].statuses[0].status == VariantStatus.CREATING.value
