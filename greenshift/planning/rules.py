"""Refusals: every request the planner will not plan, each with a message that says what would
work instead. Checked up front, so a deployment that cannot finish never starts.
"""

from __future__ import annotations

from collections.abc import Sequence

from greenshift.contracts.sagemaker_shapes import (
    CapacitySize,
    DeploymentConfig,
    UpdateEndpointInput,
)
from greenshift.errors import ValidationError
from greenshift.planning.model import VariantSpec
from greenshift.planning.sizes import (
    CANARY_LIMIT,
    CAPACITY_PERCENT,
    LINEAR_LIMIT,
    ROLLING_LIMIT,
    Limit,
    instances_for,
)


def describe_size(size: CapacitySize, n: int) -> str:
    if size.Type == CAPACITY_PERCENT:
        return f"CAPACITY_PERCENT {size.Value}"
    return f"INSTANCE_COUNT {size.Value} ({100 * size.Value / n:.0f}% of {n})"


def resolve_deployment_config(
    request: UpdateEndpointInput, last: DeploymentConfig | None
) -> tuple[DeploymentConfig | None, list[str]]:
    """The DeploymentConfig this update runs with, honouring RetainDeploymentConfig."""
    if request.RetainDeploymentConfig and request.DeploymentConfig is not None:
        raise ValidationError(
            "Give either DeploymentConfig or RetainDeploymentConfig=true, not both: "
            "RetainDeploymentConfig reuses the endpoint's LastDeploymentConfig; drop it to use "
            "the DeploymentConfig you gave."
        )
    if request.RetainDeploymentConfig:
        if last is None:
            return None, [
                "RetainDeploymentConfig: the endpoint has no LastDeploymentConfig, so the update "
                "runs without one (all at once)."
            ]
        return last, ["RetainDeploymentConfig: reusing the endpoint's LastDeploymentConfig."]
    return request.DeploymentConfig, []


def check_new_variants(specs: Sequence[VariantSpec]) -> None:
    for spec in specs:
        if spec.instance_count < 1:
            raise ValidationError(
                f"Variant {spec.variant} would have {spec.instance_count} instances. Give it "
                "InitialInstanceCount of at least 1, or exclude DesiredInstanceCount from the "
                "retained properties."
            )
    if specs and sum(spec.weight for spec in specs) <= 0:
        raise ValidationError(
            "Every variant of the new EndpointConfig would have weight 0, so no request could be "
            "served. Give at least one variant an InitialVariantWeight above 0 (with "
            "RetainAllVariantProperties, current weights count: exclude DesiredWeight to use the "
            "new config's)."
        )


def check_names_kept(current: Sequence[VariantSpec], new: Sequence[VariantSpec]) -> None:
    """With a DeploymentConfig the new config must keep the variant names, as AWS requires."""
    old_names = [s.variant for s in current]
    new_names = [s.variant for s in new]
    if sorted(old_names) != sorted(new_names):
        raise ValidationError(
            "With a DeploymentConfig the new EndpointConfig must keep the endpoint's variant names "
            f"({', '.join(old_names)}); it has {', '.join(new_names)}. Name its variants "
            f"{', '.join(old_names)}, or update without a DeploymentConfig (all at once) to add or "
            "remove variants."
        )


def check_rolling_single_variant(
    current: Sequence[VariantSpec], new: Sequence[VariantSpec]
) -> None:
    if len(current) != 1 or len(new) != 1:
        raise ValidationError(
            "A RollingUpdatePolicy works on single-variant endpoints only; this update has "
            f"variants {', '.join(s.variant for s in new)}. Use a BlueGreenUpdatePolicy instead "
            "(CANARY or LINEAR also limit how much traffic a bad version can reach)."
        )


def _count_hint(limit: Limit, n: int) -> str:
    lo, hi = limit.count_range(n)
    lo = max(lo, 1)
    if lo > hi:
        return ""
    return f"INSTANCE_COUNT {lo}" + (f"-{hi}" if hi > lo else "") + " or "


def check_canary(spec: VariantSpec, size: CapacitySize | None) -> int:
    """The canary's instances for this variant, or a refusal saying what would work."""
    n = spec.instance_count
    if size is None:
        raise ValidationError("TrafficRoutingConfiguration Type CANARY needs a CanarySize.")
    if n < 2:
        raise ValidationError(
            f"CANARY cannot deploy variant {spec.variant}: it has {n} instance, so any canary is "
            "the whole fleet and nothing stays on the old one. Use Type ALL_AT_ONCE, or give the "
            "variant at least 2 instances (CANARY and LINEAR need 2)."
        )
    k = instances_for(size, n)
    if not CANARY_LIMIT.allows(size, n) or k >= n:
        raise ValidationError(
            f"CanarySize {describe_size(size, n)} is too large for variant {spec.variant} of {n} "
            f"instance(s): a canary may be at most 50% of the variant. "
            f"{_count_hint(CANARY_LIMIT, n)}CAPACITY_PERCENT 1-50 works, or use ALL_AT_ONCE."
        )
    return k


def check_linear(spec: VariantSpec, size: CapacitySize | None) -> int:
    """The linear step's instances for this variant, or a refusal saying what would work."""
    n = spec.instance_count
    if size is None:
        raise ValidationError("TrafficRoutingConfiguration Type LINEAR needs a LinearStepSize.")
    if n < 2:
        raise ValidationError(
            f"LINEAR cannot deploy variant {spec.variant}: it has {n} instance, so the first step "
            "would move all traffic at once. Use Type ALL_AT_ONCE, or give the variant at least "
            "2 instances."
        )
    k = instances_for(size, n)
    if not LINEAR_LIMIT.allows(size, n) or k >= n:
        raise ValidationError(
            f"LinearStepSize {describe_size(size, n)} does not fit variant {spec.variant} of {n} "
            f"instance(s): a linear step must be 10-50% of the variant. "
            f"{_count_hint(LINEAR_LIMIT, n)}CAPACITY_PERCENT 10-50 works, or use CANARY or "
            "ALL_AT_ONCE."
        )
    return k


def check_rolling_batch(spec: VariantSpec, size: CapacitySize) -> int:
    n = spec.instance_count
    if not ROLLING_LIMIT.allows(size, n):
        raise ValidationError(
            f"MaximumBatchSize {describe_size(size, n)} does not fit variant {spec.variant} of "
            f"{n} instance(s): a rolling batch must be 5-50% of the variant. "
            f"{_count_hint(ROLLING_LIMIT, n)}CAPACITY_PERCENT 5-50 works, or use a "
            "BlueGreenUpdatePolicy."
        )
    return instances_for(size, n)


def check_timeout(waits: int, timeout: int | None, policy: str) -> None:
    """The waits alone must fit in MaximumExecutionTimeoutInSeconds; we refuse a tie too, since
    provisioning and shifting never take zero time (our rule)."""
    if timeout is None or waits < timeout:
        return
    fix = (
        f"Raise {policy}.MaximumExecutionTimeoutInSeconds above {waits}"
        if waits < 28800
        else "Shorten the waits (MaximumExecutionTimeoutInSeconds is at most 28800)"
    )
    raise ValidationError(
        f"The waits of this deployment add up to {waits} seconds, which does not fit in "
        f"MaximumExecutionTimeoutInSeconds {timeout}. {fix}, or shorten WaitIntervalInSeconds "
        "or TerminationWaitInSeconds."
    )
