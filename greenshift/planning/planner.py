"""The deployment planner: fleets + request → the ordered steps of a deployment.

Pure (no I/O, no clock, no Temporal), so the workflow can call it in its sandbox and
`greenshift plan` shows exactly what the workflow will do. Each strategy reads as the checklist
in SEMANTICS.md section 4; the arithmetic lives in `sizes`, the refusals in `rules`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from greenshift.contracts.sagemaker_shapes import (
    BlueGreenUpdatePolicy,
    DeploymentConfig,
    DesiredWeightAndCapacity,
    RollingUpdatePolicy,
    TrafficRoutingConfig,
    UpdateEndpointInput,
)
from greenshift.errors import ValidationError
from greenshift.planning import rules
from greenshift.planning.model import (
    BakeReason,
    FleetRef,
    Plan,
    Role,
    Strategy,
    VariantSpec,
    VariantTraffic,
)
from greenshift.planning.sizes import (
    blue_needed,
    linear_counts,
    rollback_batch,
    rolling_counts,
)
from greenshift.planning.specs import retained
from greenshift.planning.state import Builder, Traffic

NOTE_TRAFFIC = (
    "Within a variant, a fleet with k of the variant's N instances active gets k/N of its "
    "traffic (our rule)."
)
NOTE_WEIGHTS = (
    "Variant weights change to the new config's weights with the step that moves the last "
    "traffic to the new fleet (our rule)."
)
NOTE_ROUNDING = "CAPACITY_PERCENT rounds up to whole instances, at least 1 (our rule)."
NOTE_TIMEOUT = (
    "The waits must be shorter than MaximumExecutionTimeoutInSeconds; the deadline runs from the "
    "start and its expiry rolls back (our rule)."
)


def green(variant: str) -> FleetRef:
    return FleetRef(variant=variant, role=Role.GREEN)


def blue(variant: str) -> FleetRef:
    return FleetRef(variant=variant, role=Role.BLUE)


def plan_update(
    current: Sequence[VariantSpec],
    new: Sequence[VariantSpec],
    request: UpdateEndpointInput,
    last_deployment_config: DeploymentConfig | None = None,
) -> Plan:
    """Plan UpdateEndpoint from the serving variants (`current`, with their current desired
    counts and weights) to the new EndpointConfig's variants (`new`, as configured).

    Raises ValidationError for any request SEMANTICS.md section 4 refuses.
    """
    config, notes = rules.resolve_deployment_config(request, last_deployment_config)
    target, retain_notes = retained(current, new, request)
    notes += retain_notes
    rules.check_new_variants(target)
    if config is None:
        return _blue_green(Strategy.NONE, current, target, None, (), notes)
    alarms = _alarm_names(config)
    rules.check_names_kept(current, target)
    if config.RollingUpdatePolicy is not None:
        if config.BlueGreenUpdatePolicy is not None:
            raise ValidationError(
                "Give either a BlueGreenUpdatePolicy or a RollingUpdatePolicy, not both."
            )
        rules.check_rolling_single_variant(current, target)
        return _rolling(current[0], target[0], config.RollingUpdatePolicy, alarms, notes)
    policy = config.BlueGreenUpdatePolicy
    strategy = Strategy.ALL_AT_ONCE
    if policy is None:
        notes.append(
            "The DeploymentConfig has no update policy: blue/green ALL_AT_ONCE without waits, "
            "alarms checked once after the shift (our rule)."
        )
    else:
        strategy = Strategy(policy.TrafficRoutingConfiguration.Type)
    return _blue_green(strategy, current, target, policy, alarms, notes)


def plan_create(new: Sequence[VariantSpec]) -> Plan:
    """CreateEndpoint: provision every variant, then give each its weight. A DeploymentConfig
    on create changes nothing (SEMANTICS.md 3)."""
    rules.check_new_variants(new)
    return _blue_green(Strategy.CREATE, (), new, None, (), [])


def plan_weights(
    current: Sequence[VariantSpec], desired: Sequence[DesiredWeightAndCapacity]
) -> Plan:
    """UpdateEndpointWeightsAndCapacities: in place on the serving fleets. Fleets that grow do so
    before the weights change, fleets that shrink after, so no fleet is short of capacity."""
    by_name = {spec.variant: spec for spec in current}
    seen: set[str] = set()
    for item in desired:
        if item.VariantName not in by_name:
            raise ValidationError(
                f"The endpoint has no variant {item.VariantName}; its variants are "
                f"{', '.join(by_name)}."
            )
        if item.VariantName in seen:
            raise ValidationError(
                f"Variant {item.VariantName} appears twice in DesiredWeightsAndCapacities; "
                "give each variant once."
            )
        seen.add(item.VariantName)
        if item.DesiredWeight is None and item.DesiredInstanceCount is None:
            raise ValidationError(
                f"Give DesiredWeight, DesiredInstanceCount or both for variant {item.VariantName}."
            )
    changes = {item.VariantName: item for item in desired}
    target: list[VariantSpec] = []
    for spec in current:
        change = changes.get(spec.variant)
        if change is None:
            target.append(spec)
            continue
        target.append(
            spec.model_copy(
                update={
                    "instance_count": (
                        spec.instance_count
                        if change.DesiredInstanceCount is None
                        else change.DesiredInstanceCount
                    ),
                    "weight": spec.weight if change.DesiredWeight is None else change.DesiredWeight,
                }
            )
        )
    for spec in target:
        if spec.instance_count == 0 and spec.weight > 0:
            raise ValidationError(
                f"Variant {spec.variant} would have 0 instances but weight {spec.weight:g}. Set "
                "its DesiredWeight to 0 as well, or keep at least 1 instance."
            )
    if sum(spec.weight for spec in target) <= 0:
        raise ValidationError(
            "Every variant would have weight 0, so no request could be served. Keep at least one "
            "variant's DesiredWeight above 0."
        )
    before = _traffic_weights(current)
    builder = Builder(
        {blue(s.variant).key: s.instance_count for s in current},
        before,
        {blue(s.variant).key: s.instance_type for s in current},
    )
    old = {s.variant: s.instance_count for s in current}
    for spec in target:
        if spec.instance_count > old[spec.variant]:
            builder.provision(blue(spec.variant), spec.instance_count)
    builder.shift(_traffic_weights(target), "Updating variant weights.")
    for spec in target:
        if spec.instance_count < old[spec.variant]:
            builder.terminate(blue(spec.variant), spec.instance_count)
    return _finish(Strategy.WEIGHTS, current, target, before, builder, (), None, None, [])


def _traffic_weights(specs: Sequence[VariantSpec]) -> Traffic:
    return {s.variant: VariantTraffic(weight=s.weight, blue=1.0, green=0.0) for s in specs}


def _alarm_names(config: DeploymentConfig) -> tuple[str, ...]:
    rollback = config.AutoRollbackConfiguration
    if rollback is None or not rollback.Alarms:
        return ()
    return tuple(a.AlarmName for a in rollback.Alarms if a.AlarmName)


def split(
    current: Sequence[VariantSpec],
    target: Sequence[VariantSpec],
    active: Mapping[str, int],
    final: bool,
) -> Traffic:
    """Traffic when `active[v]` of each new variant's instances serve.

    Weights are the old ones until the final split (see NOTE_WEIGHTS); a variant only the old
    config has ends at weight 0, one only the new config has starts at weight 0.
    """
    old = {s.variant: s for s in current}
    new = {s.variant: s for s in target}
    traffic: Traffic = {}
    for name in [*old, *(v for v in new if v not in old)]:
        o, n = old.get(name), new.get(name)
        if n is None:
            assert o is not None
            traffic[name] = VariantTraffic(weight=0.0 if final else o.weight, blue=1.0, green=0.0)
        elif o is None:
            traffic[name] = VariantTraffic(weight=n.weight if final else 0.0, blue=0.0, green=1.0)
        else:
            k, total = min(active.get(name, 0), n.instance_count), n.instance_count
            traffic[name] = VariantTraffic(
                weight=n.weight if final else o.weight,
                blue=(total - k) / total,
                green=k / total,
            )
    return traffic


def _builder(current: Sequence[VariantSpec], target: Sequence[VariantSpec]) -> Builder:
    instances = {blue(s.variant).key: s.instance_count for s in current}
    instances.update({green(s.variant).key: 0 for s in target})
    types = {blue(s.variant).key: s.instance_type for s in current}
    types.update({green(s.variant).key: s.instance_type for s in target})
    return Builder(instances, split(current, target, {}, final=False), types)


def _blue_green(
    strategy: Strategy,
    current: Sequence[VariantSpec],
    target: Sequence[VariantSpec],
    policy: BlueGreenUpdatePolicy | None,
    alarms: tuple[str, ...],
    notes: list[str],
) -> Plan:
    """Provision the whole new fleet, shift traffic in stages with a bake after each (the last
    stage's is the final bake, `final_bake`), retire the old fleet."""
    full = {s.variant: s.instance_count for s in target}
    stages: list[tuple[dict[str, int], str]] = [(full, "full")]
    routing = policy.TrafficRoutingConfiguration if policy is not None else None
    if strategy is Strategy.CANARY:
        assert routing is not None
        canary = {s.variant: rules.check_canary(s, routing.CanarySize) for s in target}
        stages = [(canary, "canary"), (full, "full")]
        notes += [NOTE_TRAFFIC, NOTE_WEIGHTS]
    elif strategy is Strategy.LINEAR:
        assert routing is not None
        size = routing.LinearStepSize
        steps = {
            s.variant: linear_counts(s.instance_count, rules.check_linear(s, size)) for s in target
        }
        count = max(len(seq) for seq in steps.values())
        stages = [
            ({v: seq[min(i, len(seq) - 1)] for v, seq in steps.items()}, "linear step")
            for i in range(count - 1)
        ] + [(full, "full")]
        notes += [NOTE_TRAFFIC, NOTE_WEIGHTS]
    if routing is not None and _uses_percent(routing):
        notes.append(NOTE_ROUNDING)
    wait = routing.WaitIntervalInSeconds if routing is not None else 0
    final_wait = (policy.TerminationWaitInSeconds or 0) if policy is not None else 0
    baking = strategy not in (Strategy.NONE, Strategy.CREATE)

    b = _builder(current, target)
    for spec in target:
        b.provision(green(spec.variant), spec.instance_count)
    for number, (active, label) in enumerate(stages, start=1):
        capacity = f"{label} capacity of {sum(active.values())} instance(s)"
        b.shift(
            split(current, target, active, final=active == full),
            f"Activating traffic on {capacity}.",
        )
        if baking and number < len(stages):  # the last stage's bake is the final one
            b.bake(
                wait,
                BakeReason.WAIT_INTERVAL,
                alarms,
                f"Baking for {wait} seconds (WaitIntervalInSeconds) with traffic enabled on "
                f"{capacity}.",
            )
    if baking:
        seconds, reason, why = final_bake(wait, final_wait)
        b.bake(
            seconds,
            reason,
            alarms,
            f"Baking for {seconds} seconds ({why}) with traffic enabled on full capacity of "
            f"{sum(full.values())} instance(s).",
        )
    for spec in current:
        b.terminate(blue(spec.variant), 0)
    timeout = policy.MaximumExecutionTimeoutInSeconds if policy is not None else None
    rules.check_timeout(b.offset, timeout, "BlueGreenUpdatePolicy")
    if timeout is not None:
        notes.append(NOTE_TIMEOUT)
    return _finish(
        strategy,
        current,
        target,
        split(current, target, {}, final=False),
        b,
        alarms,
        timeout,
        None,
        notes,
    )


def final_bake(wait: int, final_wait: int) -> tuple[int, BakeReason, str]:
    """The bake after the last traffic step and the final bake (TerminationWaitInSeconds) are
    one bake, back to back with the same alarms: one wait, one alarm check at its end, one
    workflow timer. Its seconds, reason and the words that say what it is made of."""
    if final_wait <= 0:
        return wait, BakeReason.WAIT_INTERVAL, "WaitIntervalInSeconds"
    if wait <= 0:
        return final_wait, BakeReason.TERMINATION_WAIT, "TerminationWaitInSeconds"
    words = f"WaitIntervalInSeconds {wait}, then TerminationWaitInSeconds {final_wait}"
    return wait + final_wait, BakeReason.FINAL, words


def _uses_percent(routing: TrafficRoutingConfig) -> bool:
    size = routing.CanarySize if routing.Type == "CANARY" else routing.LinearStepSize
    return routing.Type != "ALL_AT_ONCE" and size is not None and size.Type == "CAPACITY_PERCENT"


def _rolling(
    old: VariantSpec,
    new: VariantSpec,
    policy: RollingUpdatePolicy,
    alarms: tuple[str, ...],
    notes: list[str],
) -> Plan:
    """Per batch: provision the batch → move its share of traffic → bake → retire as many old
    instances as the new ones now cover. At most N + one batch instances exist."""
    n_new, n_old = new.instance_count, old.instance_count
    batch = rules.check_rolling_batch(new, policy.MaximumBatchSize)
    wait = policy.WaitIntervalInSeconds
    b = _builder([old], [new])
    for active in rolling_counts(n_new, batch):
        final = active == n_new
        capacity = f"rolling batch capacity of {active} instance(s)"
        b.provision(green(new.variant), active)
        b.shift(
            split([old], [new], {new.variant: active}, final=final),
            f"Activating traffic on {capacity}.",
        )
        b.bake(
            wait,
            BakeReason.WAIT_INTERVAL,
            alarms,
            f"Baking for {wait} seconds (WaitIntervalInSeconds) with traffic enabled on "
            f"{capacity}.",
        )
        b.terminate(blue(old.variant), blue_needed(active, n_new, n_old))
    timeout = policy.MaximumExecutionTimeoutInSeconds
    rules.check_timeout(b.offset, timeout, "RollingUpdatePolicy")
    rollback = rollback_batch(policy.RollbackMaximumBatchSize, n_old)
    notes += [NOTE_TRAFFIC, NOTE_WEIGHTS]
    if policy.MaximumBatchSize.Type == "CAPACITY_PERCENT":
        notes.append(NOTE_ROUNDING)
    if n_old != n_new:
        notes.append(
            f"The variant goes from {n_old} to {n_new} instances: each batch retires the old "
            "instances the new ones now cover, rounded so the old fleet is never short (our rule)."
        )
    notes.append(
        "Rollback restores the old fleet all at once."
        if rollback is None
        else f"Rollback restores the old fleet in batches of {rollback} instance(s)."
    )
    if timeout is not None:
        notes.append(NOTE_TIMEOUT)
    return _finish(
        Strategy.ROLLING,
        [old],
        [new],
        split([old], [new], {}, final=False),
        b,
        alarms,
        timeout,
        rollback,
        notes,
    )


def _finish(
    strategy: Strategy,
    current: Sequence[VariantSpec],
    target: Sequence[VariantSpec],
    traffic_before: Traffic,
    b: Builder,
    alarms: tuple[str, ...],
    timeout: int | None,
    rollback: int | None,
    notes: list[str],
) -> Plan:
    instances_before = {blue(s.variant).key: s.instance_count for s in current}
    if strategy is not Strategy.WEIGHTS:
        instances_before.update({green(s.variant).key: 0 for s in target})
    return Plan(
        strategy=strategy,
        blue=tuple(current),
        green=tuple(target),
        steps=tuple(b.steps),
        alarms=alarms,
        peak_instances=b.peak,
        min_duration_seconds=b.offset,
        max_execution_timeout_seconds=timeout,
        rollback_max_batch_instances=rollback,
        notes=tuple(dict.fromkeys(notes)),
        instances_before=instances_before,
        traffic_before=traffic_before,
    )
