"""Routing writes fenced by deployment and step (RoutingFence): a traffic write that outlives its
step (an activity cancelled or timed out that still runs, a worker paused past its heartbeat)
cannot undo a later step of its deployment, its rollback above all, nor write once the
deployment has let go of the endpoint."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.models import DeploymentRef, StepInput
from activities.traffic import TrafficActivities
from greenshift.dataplane.router import RegistryTrafficRouter
from greenshift.errors import StaleRouting
from greenshift.names import fleet_key
from greenshift.planning.model import Role, TrafficStep, VariantTraffic
from greenshift.registry.records import RoutingFence
from greenshift.registry.sql import SqlRegistry
from greenshift.status import DeploymentOutcome, EndpointStatus
from tests.registry_records import deployment, endpoint
from tests.unit.test_registry_dataplane import routing


def held_by(registry: SqlRegistry, deployment_id: str) -> None:
    registry.create_endpoint(endpoint("ep"), deployment(deployment_id, "ep", "CreateEndpoint"))


def stored(registry: SqlRegistry) -> tuple[int, float]:
    got = registry.get_routing("ep")
    assert got is not None
    return got.version, got.routing.variants[0].weight


def test_a_deployments_writes_take_effect_in_step_order(registry: SqlRegistry) -> None:
    held_by(registry, "d1")
    assert registry.set_routing(routing(weight=1), RoutingFence(deployment_id="d1", step=1)) == 1
    assert registry.set_routing(routing(weight=2), RoutingFence(deployment_id="d1", step=3)) == 2
    # The step-1 write again, after step 3 (its activity outlived it): refused, nothing written.
    with pytest.raises(StaleRouting, match="step 4 of it came first"):
        registry.set_routing(routing(weight=1), RoutingFence(deployment_id="d1", step=1))
    assert stored(registry) == (2, 2)
    # The same step again (a retry that finds its write done) is idempotent, as before.
    assert registry.set_routing(routing(weight=2), RoutingFence(deployment_id="d1", step=3)) == 2


def test_a_rollback_that_writes_what_is_there_still_moves_the_fence(
    registry: SqlRegistry,
) -> None:
    held_by(registry, "d1")
    registry.set_routing(routing(weight=1), RoutingFence(deployment_id="d1", step=0))
    # The rollback routes as the routing stands (nothing new: the version stays) ...
    assert registry.set_routing(routing(weight=1), RoutingFence(deployment_id="d1", step=7)) == 1
    # ... and the canary step that comes after it is refused.
    with pytest.raises(StaleRouting):
        registry.set_routing(routing(weight=5), RoutingFence(deployment_id="d1", step=2))
    assert stored(registry) == (1, 1)


def test_only_the_deployment_holding_the_endpoint_writes_fenced(registry: SqlRegistry) -> None:
    held_by(registry, "d1")
    with pytest.raises(StaleRouting, match="no longer holds endpoint ep"):
        registry.set_routing(routing(), RoutingFence(deployment_id="d0", step=9))
    assert registry.get_routing("ep") is None
    registry.set_routing(routing(weight=1), RoutingFence(deployment_id="d1", step=1))
    registry.finish_operation(
        "ep", "d1", status=EndpointStatus.IN_SERVICE, outcome=DeploymentOutcome.SUCCEEDED
    )
    with pytest.raises(StaleRouting, match="no longer holds"):  # finished: released
        registry.set_routing(routing(weight=4), RoutingFence(deployment_id="d1", step=1))
    # Writes without a fence (weights set by hand, settling, a delete) go as before.
    assert registry.set_routing(routing(weight=4)) == 2
    assert stored(registry) == (2, 4)


FLEETS = {fleet_key(Role.BLUE, "A"): "blue", fleet_key(Role.GREEN, "A"): "green"}


def traffic_step(green: float, fence: int, deployment_id: str = "d1") -> StepInput:
    return StepInput(
        ref=DeploymentRef(endpoint="ep", deployment_id=deployment_id),
        step=TrafficStep(
            message=f"{green:.0%} to green",
            variants={"A": VariantTraffic(weight=1.0, blue=1.0 - green, green=green)},
        ),
        fleets=FLEETS,
        fence_step=fence,
    )


def traffic_activities(registry: SqlRegistry) -> TrafficActivities:
    """The activities over the registry's router, with the endpoint's routing before the
    deployment in place and the data plane applying whatever comes (no waiting)."""
    registry.set_routing(routing())
    registry.mark_applied("ep", 100)
    return TrafficActivities(RegistryTrafficRouter(registry))


def test_the_traffic_activity_of_a_step_its_rollback_overtook_changes_nothing(
    registry: SqlRegistry,
) -> None:
    """The activity as a worker runs it, over the registry's router: the canary step's
    activity, still running after the rollback moved all traffic back, is refused with a
    typed error no retry repeats, and the rollback's routing stays."""
    held_by(registry, "d1")
    activities = traffic_activities(registry)
    run = ActivityEnvironment().run
    run(activities.shift_traffic, traffic_step(0.25, 1))  # the canary
    run(activities.shift_traffic, traffic_step(0.0, 6))  # the rollback: all traffic back
    with pytest.raises(ApplicationError) as refused:
        run(activities.shift_traffic, traffic_step(0.25, 1))  # the canary step's late activity
    assert refused.value.type == "StaleRouting" and refused.value.non_retryable
    got = registry.get_routing("ep")
    assert got is not None
    shares = {f.fleet_id: f.share for v in got.routing.variants for f in v.fleets}
    assert shares == {"blue": 1.0}


def test_a_cleared_routing_is_the_deployments_last(registry: SqlRegistry) -> None:
    """A failed create's cleanup clears the routing; its traffic step's late activity after
    that is refused, and the endpoint stays without routing."""
    held_by(registry, "c1")
    activities = traffic_activities(registry)
    run = ActivityEnvironment().run
    run(activities.shift_traffic, traffic_step(1.0, 1, "c1"))
    run(activities.clear_routing, DeploymentRef(endpoint="ep", deployment_id="c1"))
    with pytest.raises(ApplicationError) as refused:
        run(activities.shift_traffic, traffic_step(1.0, 1, "c1"))
    assert refused.value.type == "StaleRouting"
    got = registry.get_routing("ep")
    assert got is not None and got.routing.variants == []


def test_a_deployment_that_no_longer_holds_the_endpoint_still_clears_it(
    registry: SqlRegistry,
) -> None:
    held_by(registry, "d1")
    activities = traffic_activities(registry)
    ActivityEnvironment().run(
        activities.clear_routing, DeploymentRef(endpoint="ep", deployment_id="d0")
    )
    got = registry.get_routing("ep")
    assert got is not None and got.routing.variants == []
