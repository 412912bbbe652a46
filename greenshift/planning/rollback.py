"""Rollback from any point of a plan: traffic back to the old fleet, the new one retired.

A workflow that must roll back asks for `rollback_steps(plan, completed)`; the steps are absolute,
so a step that was in flight when the deployment failed can be counted as completed: rolling back
from "it happened" also covers "it did not".
"""

from __future__ import annotations

from greenshift.names import fleet_key
from greenshift.planning.model import FleetRef, Plan, Role, Step, Strategy, VariantTraffic
from greenshift.planning.sizes import ceil_div
from greenshift.planning.state import Builder, Instances, Traffic, fleet_from_key


def state_after(plan: Plan, completed: int) -> tuple[Instances, Traffic]:
    """Fleet sizes and traffic once the first `completed` steps are done."""
    if completed <= 0:
        return dict(plan.instances_before), dict(plan.traffic_before)
    step = plan.steps[min(completed, len(plan.steps)) - 1]
    return dict(step.instances_after), dict(step.traffic_after)


def rollback_steps(plan: Plan, completed: int) -> list[Step]:
    """The steps that return the endpoint to where it was before the plan, from the state after
    `completed` steps: old capacity restored first, then traffic, then the new fleet retired.

    Rolling plans with a RollbackMaximumBatchSize move back in batches of that many instances
    (SEMANTICS.md 4); everything else moves back at once.
    """
    instances, traffic = state_after(plan, completed)
    types: dict[str, str] = {fleet_key(Role.BLUE, s.variant): s.instance_type for s in plan.blue}
    types.update({fleet_key(Role.GREEN, s.variant): s.instance_type for s in plan.green})
    b = Builder(instances, traffic, types)
    if plan.strategy is Strategy.ROLLING and plan.rollback_max_batch_instances:
        _rolling_back(plan, b, plan.rollback_max_batch_instances)
    _restore(plan, b)
    return [planned.step for planned in b.steps]


def _restore(plan: Plan, b: Builder) -> None:
    for key, count in plan.instances_before.items():
        b.provision(fleet_from_key(key), count)
    b.shift(plan.traffic_before, _back_message(plan))
    for key in list(b.instances):
        b.terminate(fleet_from_key(key), plan.instances_before.get(key, 0))


def _rolling_back(plan: Plan, b: Builder, batch: int) -> None:
    """Batch by batch: move back as much traffic as the old instances on hand can carry, retire
    the new instances that no longer carry any, then bring back one batch of old instances.
    Reusing idle old instances first keeps the peak at N + one (rollback) batch."""
    old, new = plan.blue[0], plan.green[0]
    blue_ref, green_ref = (
        FleetRef(variant=old.variant, role=Role.BLUE),
        FleetRef(variant=new.variant, role=Role.GREEN),
    )
    n_old, n_new = old.instance_count, new.instance_count
    weight = plan.traffic_before[old.variant].weight
    for _ in range(ceil_div(n_old, batch) + 2):  # bounded: each turn adds a batch
        blue = b.count(blue_ref)
        current = b.traffic[old.variant].green
        green_left = min(current, (n_old - blue) / n_old)
        b.shift(
            {old.variant: VariantTraffic(weight=weight, blue=1.0 - green_left, green=green_left)}
            if green_left > 0
            else plan.traffic_before,
            f"Moving traffic back to {blue} instance(s) of the old fleet.",
        )
        # Shares are k/n of integers: round before ceil so 0.30000000000000004 * 10 is 3, not 4.
        needed = min(
            ceil_div((n_old - blue) * n_new, n_old),
            ceil_div(round(current * n_new * 10**6), 10**6),
        )
        b.terminate(green_ref, needed)
        if green_left <= 0:
            return
        b.provision(blue_ref, min(n_old, blue + batch))


def _back_message(plan: Plan) -> str:
    total = sum(s.instance_count for s in plan.blue)
    return f"Moving all traffic back to the old fleet of {total} instance(s)."
