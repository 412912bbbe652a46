"""Invariants of every plan, over random valid inputs (hypothesis).

For every state a plan passes through (forward, and along the rollback from every point): each
variant's shares sum to 1, no fleet serves a share larger than the capacity it has, rolling never
holds more than N + one batch instances, and the way back ends with all traffic on the old fleet
and the new one at 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenshift.contracts.sagemaker_shapes import (
    CapacitySize,
    DesiredWeightAndCapacity,
    UpdateEndpointInput,
)
from greenshift.errors import ValidationError
from greenshift.names import fleet_key
from greenshift.planning.model import BakeStep, Plan, Step, Strategy, VariantSpec, VariantTraffic
from greenshift.planning.planner import plan_create, plan_update, plan_weights
from greenshift.planning.rollback import rollback_steps, state_after
from greenshift.planning.sizes import instances_for
from greenshift.planning.state import apply_step

EPS = 1e-9
SETTINGS = settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
NAMES = ["A", "B", "C", "D"]
WEIGHTS = st.sampled_from([0.0, 0.5, 1.0, 2.0])

State = tuple[dict[str, int], dict[str, VariantTraffic]]


def capacity(plan: Plan) -> dict[str, int]:
    """The instance count a fleet needs to serve a share of 1 of its variant."""
    sizes = {f"blue/{s.variant}": s.instance_count for s in plan.blue}
    sizes.update({f"green/{s.variant}": s.instance_count for s in plan.green})
    return sizes


def check_state(plan: Plan, state: State) -> None:
    instances, traffic = state
    total = sum(t.weight for t in traffic.values())
    needs = capacity(plan)
    for variant, t in traffic.items():
        assert abs(t.blue + t.green - 1) < EPS, (variant, t)
        assert t.blue >= 0 and t.green >= 0
        if t.weight <= 0 or total <= 0:
            continue
        for role, share in (("blue", t.blue), ("green", t.green)):
            key = fleet_key(role, variant)
            if share <= EPS:
                continue
            have = instances.get(key, 0)
            # Nobody serves without instances; and a fleet serving share s of a variant of N
            # slots has at least s * N of them (the WEIGHTS plan resizes the fleet itself).
            assert have > 0, (key, share, instances)
            if plan.strategy is not Strategy.WEIGHTS:
                assert have >= share * needs[key] - EPS, (key, share, have, needs[key])


def walk(plan: Plan, start: State, steps: Sequence[Step]) -> list[State]:
    states = [start]
    for step in steps:
        states.append(apply_step(*states[-1], step))
        check_state(plan, states[-1])
    return states


def back_home(plan: Plan, state: State) -> None:
    instances, traffic = state
    assert traffic == plan.traffic_before
    for key, count in plan.instances_before.items():
        assert instances.get(key, 0) == count, (key, instances)
    for key, count in instances.items():
        if key.startswith("green/"):
            assert count == 0


def check_plan(plan: Plan, rolling_batch: int | None = None) -> None:
    """Every invariant, forward and along every way back. `rolling_batch` (rolling plans): at
    most N + one batch instances forward, N + the larger of batch and rollback batch backward."""
    start: State = (dict(plan.instances_before), dict(plan.traffic_before))
    check_state(plan, start)
    states = walk(plan, start, [p.step for p in plan.steps])
    for planned, state in zip(plan.steps, states[1:], strict=True):
        assert state == (planned.instances_after, planned.traffic_after)
    assert plan.peak_instances == max(sum(i.values()) for i, _ in states)
    bakes = [p.step for p in plan.steps if isinstance(p.step, BakeStep)]
    assert plan.min_duration_seconds == sum(b.seconds for b in bakes)
    elapsed = 0
    for planned in plan.steps:
        assert planned.offset_seconds == elapsed
        if isinstance(planned.step, BakeStep):
            elapsed += planned.step.seconds
    n = max([s.instance_count for s in (*plan.blue, *plan.green)])
    if rolling_batch is not None:
        assert plan.peak_instances <= n + rolling_batch
    for completed in range(len(plan.steps) + 1):
        here = state_after(plan, completed)
        assert here == states[completed]
        # The rollback a workflow runs.
        path = walk(plan, here, rollback_steps(plan, completed))
        back_home(plan, path[-1])
        if rolling_batch is not None and plan.rollback_max_batch_instances is not None:
            bound = n + max(rolling_batch, plan.rollback_max_batch_instances)
            assert max(sum(i.values()) for i, _ in path) <= bound


def spec(name: str, count: int, weight: float, model: str = "m") -> VariantSpec:
    return VariantSpec(
        variant=name,
        model_name=model,
        instance_type="ml.m5.large",
        instance_count=count,
        weight=weight,
    )


@st.composite
def variant_sets(
    draw: Any, same_names: bool, min_count: int = 1, max_variants: int = 4
) -> tuple[list[VariantSpec], list[VariantSpec]]:
    k = draw(st.integers(1, max_variants))
    old_names = NAMES[:k]
    new_names = (
        old_names
        if same_names
        else draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    )
    counts = st.integers(min_count, 30)
    old = [spec(n, draw(counts), draw(WEIGHTS)) for n in old_names]
    new = [spec(n, draw(counts), draw(WEIGHTS), model="m2") for n in new_names]
    if sum(s.weight for s in new) == 0:
        new[0] = new[0].model_copy(update={"weight": 1.0})
    if sum(s.weight for s in old) == 0:
        old[0] = old[0].model_copy(update={"weight": 1.0})
    return old, new


def size(draw: Any, low: int, high: int, counts: Sequence[int]) -> dict[str, Any]:
    """A CapacitySize inside [low, high] percent for every count, as a percentage or, when one
    value fits every variant, as an instance count."""
    lo = max(-(-low * n // 100) for n in counts)
    hi = min(high * n // 100 for n in counts)
    lo = max(lo, 1)
    if lo <= hi and draw(st.booleans()):
        return {"Type": "INSTANCE_COUNT", "Value": draw(st.integers(lo, hi))}
    return {"Type": "CAPACITY_PERCENT", "Value": draw(st.integers(max(low, 1), high))}


def blue_green_config(draw: Any, kind: str, counts: Sequence[int]) -> dict[str, Any]:
    routing: dict[str, Any] = {"Type": kind, "WaitIntervalInSeconds": draw(st.integers(0, 3600))}
    if kind == "CANARY":
        routing["CanarySize"] = size(draw, 0, 50, counts)
    if kind == "LINEAR":
        routing["LinearStepSize"] = size(draw, 10, 50, counts)
    policy: dict[str, Any] = {"TrafficRoutingConfiguration": routing}
    if draw(st.booleans()):
        policy["TerminationWaitInSeconds"] = draw(st.integers(0, 3600))
    return {"BlueGreenUpdatePolicy": policy, **alarms(draw)}


def alarms(draw: Any) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(["a5xx", "latency"]), max_size=2, unique=True))
    if not names:
        return {}
    return {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": n} for n in names]}}


def request(config: dict[str, Any] | None = None, **flags: Any) -> UpdateEndpointInput:
    body: dict[str, Any] = {"EndpointName": "e", "EndpointConfigName": "c2", **flags}
    if config is not None:
        body["DeploymentConfig"] = config
    return UpdateEndpointInput.from_wire(body)


@SETTINGS
@given(st.data(), st.sampled_from(["ALL_AT_ONCE", "CANARY", "LINEAR"]))
def test_blue_green_plans_keep_invariants(data: st.DataObject, kind: str) -> None:
    min_count = 1 if kind == "ALL_AT_ONCE" else 2
    old, new = data.draw(variant_sets(same_names=True, min_count=min_count))
    config = blue_green_config(data.draw, kind, [s.instance_count for s in new])
    plan = plan_update(old, new, request(config))
    assert plan.strategy.value == kind
    check_plan(plan)
    # The new fleet is complete before any of it serves.
    first_traffic = next(p.index for p in plan.steps if p.step.kind == "traffic")
    before = state_after(plan, first_traffic)[0]
    assert all(before[f"green/{s.variant}"] == s.instance_count for s in new)


@SETTINGS
@given(
    variant_sets(same_names=False),
    st.booleans(),
    st.lists(st.sampled_from(["DesiredInstanceCount", "DesiredWeight"]), unique=True),
)
def test_updates_without_deployment_config_keep_invariants(
    fleets: tuple[list[VariantSpec], list[VariantSpec]], retain: bool, exclude: list[str]
) -> None:
    old, new = fleets
    flags: dict[str, Any] = {}
    if retain:
        flags["RetainAllVariantProperties"] = True
        flags["ExcludeRetainedVariantProperties"] = [{"VariantPropertyType": p} for p in exclude]
    weights = {s.variant: s.weight for s in new}
    if retain and "DesiredWeight" not in exclude:
        weights.update({s.variant: s.weight for s in old if s.variant in weights})
    if sum(weights.values()) == 0:
        with pytest.raises(ValidationError, match="weight 0"):
            plan_update(old, new, request(None, **flags))
        return
    plan = plan_update(old, new, request(None, **flags))
    assert plan.strategy is Strategy.NONE
    assert plan.min_duration_seconds == 0
    check_plan(plan)


@SETTINGS
@given(st.data())
def test_rolling_plans_keep_invariants(data: st.DataObject) -> None:
    old, new = data.draw(variant_sets(same_names=True, max_variants=1))
    n_new = new[0].instance_count
    batch = size(data.draw, 5, 50, [n_new])
    policy: dict[str, Any] = {
        "MaximumBatchSize": batch,
        "WaitIntervalInSeconds": data.draw(st.integers(0, 600)),
    }
    if data.draw(st.booleans()):
        policy["RollbackMaximumBatchSize"] = data.draw(
            st.one_of(
                st.builds(lambda v: {"Type": "INSTANCE_COUNT", "Value": v}, st.integers(1, 40)),
                st.builds(lambda v: {"Type": "CAPACITY_PERCENT", "Value": v}, st.integers(1, 100)),
            )
        )
    plan = plan_update(old, new, request({"RollingUpdatePolicy": policy, **alarms(data.draw)}))
    assert plan.strategy is Strategy.ROLLING
    per_batch = instances_for(CapacitySize.from_wire(batch), n_new)
    check_plan(plan, rolling_batch=per_batch)


@SETTINGS
@given(variant_sets(same_names=True), st.data())
def test_weight_and_capacity_changes_keep_invariants(
    fleets: tuple[list[VariantSpec], list[VariantSpec]], data: st.DataObject
) -> None:
    current, _ = fleets
    chosen = data.draw(st.lists(st.sampled_from(current), min_size=1, unique=True))
    desired = [
        DesiredWeightAndCapacity.from_wire(
            {
                "VariantName": s.variant,
                "DesiredWeight": data.draw(WEIGHTS),
                "DesiredInstanceCount": data.draw(st.integers(1, 30)),
            }
        )
        for s in chosen
    ]
    if sum(_weight_after(current, desired).values()) == 0:
        desired[0].DesiredWeight = 1.0
    plan = plan_weights(current, desired)
    check_plan(plan)
    final = state_after(plan, len(plan.steps))
    for item in desired:
        assert final[0][f"blue/{item.VariantName}"] == item.DesiredInstanceCount
        assert final[1][item.VariantName].weight == item.DesiredWeight


def _weight_after(
    current: Sequence[VariantSpec], desired: Sequence[DesiredWeightAndCapacity]
) -> Mapping[str, float]:
    weights = {s.variant: s.weight for s in current}
    weights.update({d.VariantName: d.DesiredWeight or 0.0 for d in desired})
    return weights


@SETTINGS
@given(variant_sets(same_names=True))
def test_create_plans_keep_invariants(fleets: tuple[list[VariantSpec], list[VariantSpec]]) -> None:
    _, new = fleets
    plan = plan_create(new)
    check_plan(plan)
    instances, traffic = state_after(plan, len(plan.steps))
    assert all(instances[f"green/{s.variant}"] == s.instance_count for s in new)
    assert all(traffic[s.variant].green == 1 for s in new)
