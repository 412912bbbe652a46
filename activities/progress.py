"""Pure: what DescribeEndpoint's PendingDeploymentSummary shows at a step of a plan.

Counts and weights "now" are the plan's state after the previous step (`instances_after`,
`traffic_after`), so they follow the deployment as it goes; "desired" is the green side.
"""

from __future__ import annotations

from datetime import datetime

from greenshift.names import fleet_key
from greenshift.planning.model import (
    BakeStep,
    Plan,
    ProvisionStep,
    Role,
    Step,
    TerminateStep,
    TrafficStep,
    VariantTraffic,
)
from greenshift.registry.records import PendingDeployment, PendingVariant, VariantStatusEntry
from greenshift.status import VariantStatus


def _status_of(step: Step) -> VariantStatus:
    match step:
        case ProvisionStep(fleet=fleet):
            return VariantStatus.CREATING if fleet.role is Role.GREEN else VariantStatus.UPDATING
        case TrafficStep():
            return VariantStatus.ACTIVATING_TRAFFIC
        case BakeStep():
            return VariantStatus.BAKING
        case TerminateStep():
            return VariantStatus.DELETING
    raise TypeError(f"unknown step {step!r}")


def _variants_of(step: Step, plan: Plan) -> set[str]:
    match step:
        case ProvisionStep(fleet=fleet) | TerminateStep(fleet=fleet):
            return {fleet.variant}
        case TrafficStep(variants=variants):
            return set(variants)
    return {spec.variant for spec in plan.green}


def state_before(plan: Plan, index: int) -> tuple[dict[str, int], dict[str, VariantTraffic]]:
    """Instances per fleet key and traffic per variant before step `index` runs."""
    if index > 0 and index - 1 < len(plan.steps):
        previous = plan.steps[index - 1]
        return dict(previous.instances_after), dict(previous.traffic_after)
    if index >= len(plan.steps) and plan.steps:
        last = plan.steps[-1]
        return dict(last.instances_after), dict(last.traffic_after)
    instances: dict[str, int] = {
        fleet_key(Role.BLUE, s.variant): s.instance_count for s in plan.blue
    }
    traffic = {s.variant: VariantTraffic(weight=s.weight, blue=1.0, green=0.0) for s in plan.blue}
    return instances, traffic


def pending_at(
    plan: Plan,
    *,
    config_name: str,
    start_time: datetime,
    index: int,
    phase: str,
    at: datetime,
    message: str,
    bake_ends_at: datetime | None = None,
    paused: bool = False,
    alarm_states: dict[str, str] | None = None,
) -> PendingDeployment:
    """The PendingDeployment while step `index` runs (or before the first, index -1)."""
    instances, traffic = state_before(plan, max(index, 0))
    step = plan.steps[index].step if 0 <= index < len(plan.steps) else None
    touched = _variants_of(step, plan) if step is not None else set()
    variants: list[PendingVariant] = []
    for spec in plan.green:
        now = traffic.get(spec.variant)
        statuses: list[VariantStatusEntry] = []
        if step is not None and spec.variant in touched:
            statuses.append(
                VariantStatusEntry(status=_status_of(step).value, message=message, start_time=at)
            )
        variants.append(
            PendingVariant(
                variant=spec.variant,
                model_name=spec.model_name,
                instance_type=spec.instance_type,
                current_weight=(now.weight * now.green) if now else 0.0,
                desired_weight=spec.weight,
                current_instance_count=instances.get(fleet_key(Role.GREEN, spec.variant), 0),
                desired_instance_count=spec.instance_count,
                statuses=statuses,
            )
        )
    return PendingDeployment(
        config_name=config_name,
        start_time=start_time,
        variants=variants,
        phase=phase,
        step_index=index if index >= 0 else None,
        step_count=len(plan.steps),
        bake_ends_at=bake_ends_at,
        alarm_states=dict(alarm_states or {}),
        paused=paused,
    )
