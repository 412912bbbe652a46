"""Fleet sizes and traffic as a plan moves them, and the builder that records the steps.

The planner and the rollback both describe a deployment as a walk through states; the builder
keeps that state, so every step knows what it changes from and what it leads to
(`instances_after`, `traffic_after`), and steps that would change nothing are never emitted.
"""

from __future__ import annotations

from collections.abc import Mapping

from greenshift.names import parse_fleet_key
from greenshift.planning.model import (
    BakeReason,
    BakeStep,
    FleetRef,
    PlannedStep,
    ProvisionStep,
    Role,
    Step,
    TerminateStep,
    TrafficStep,
    VariantTraffic,
)

Instances = dict[str, int]
Traffic = dict[str, VariantTraffic]


def fleet_from_key(key: str) -> FleetRef:
    role, variant = parse_fleet_key(key)
    return FleetRef(variant=variant, role=Role(role))


def apply_step(
    instances: Mapping[str, int], traffic: Mapping[str, VariantTraffic], step: Step
) -> tuple[Instances, Traffic]:
    """The state after carrying out `step` (absolute, so applying it twice changes nothing)."""
    inst = dict(instances)
    traf = dict(traffic)
    if isinstance(step, ProvisionStep):
        inst[step.fleet.key] = max(inst.get(step.fleet.key, 0), step.count)
    elif isinstance(step, TerminateStep):
        inst[step.fleet.key] = min(inst.get(step.fleet.key, 0), step.count)
    elif isinstance(step, TrafficStep):
        traf.update(step.variants)
    return inst, traf


class Builder:
    """Appends steps to a deployment, tracking state, time offset and peak instance count."""

    def __init__(
        self,
        instances: Mapping[str, int],
        traffic: Mapping[str, VariantTraffic],
        instance_types: Mapping[str, str],
    ) -> None:
        self.instances: Instances = dict(instances)
        self.traffic: Traffic = dict(traffic)
        self.instance_types = dict(instance_types)
        self.steps: list[PlannedStep] = []
        self.offset = 0
        self.peak = sum(self.instances.values())

    def count(self, fleet: FleetRef) -> int:
        return self.instances.get(fleet.key, 0)

    def provision(self, fleet: FleetRef, count: int) -> None:
        before = self.count(fleet)
        if count <= before:
            return
        kind = self.instance_types.get(fleet.key, "")
        self._add(
            ProvisionStep(
                fleet=fleet,
                count=count,
                instance_type=kind,
                message=f"Launching {count - before} instance(s).",
            )
        )

    def terminate(self, fleet: FleetRef, count: int) -> None:
        before = self.count(fleet)
        if count >= before:
            return
        self._add(
            TerminateStep(
                fleet=fleet, count=count, message=f"Terminating {before - count} instance(s)."
            )
        )

    def shift(self, traffic: Mapping[str, VariantTraffic], message: str) -> None:
        if all(self.traffic.get(v) == t for v, t in traffic.items()):
            return
        self._add(TrafficStep(variants=dict(traffic), message=message))

    def bake(self, seconds: int, reason: BakeReason, alarms: tuple[str, ...], message: str) -> None:
        # A bake of 0 seconds still means one alarm check; without alarms it means nothing.
        if seconds <= 0 and not alarms:
            return
        self._add(BakeStep(seconds=seconds, reason=reason, alarms=alarms, message=message))
        self.offset += seconds

    def _add(self, step: Step) -> None:
        offset = self.offset
        self.instances, self.traffic = apply_step(self.instances, self.traffic, step)
        self.peak = max(self.peak, sum(self.instances.values()))
        self.steps.append(
            PlannedStep(
                index=len(self.steps),
                offset_seconds=offset,
                step=step,
                instances_after=dict(self.instances),
                traffic_after=dict(self.traffic),
            )
        )
