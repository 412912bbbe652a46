"""VariantSpecs from SageMaker shapes, and the retained-properties rule.

Callers (API, workflows, `greenshift plan`) hold ProductionVariant lists; these helpers turn them
into the planner's VariantSpecs in one place, so defaults (weight 1.0, startup timeout 600 s) are
applied once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from greenshift.contracts.sagemaker_shapes import ProductionVariant, UpdateEndpointInput
from greenshift.errors import ValidationError
from greenshift.planning.model import VariantSpec

DEFAULT_WEIGHT = 1.0
DEFAULT_STARTUP_TIMEOUT_SECONDS = 600  # our rule (SEMANTICS.md 6)
DEFAULT_DOWNLOAD_TIMEOUT_SECONDS = 3600  # AWS's default for ModelDataDownloadTimeoutInSeconds
DEFAULT_ROUTING = "LEAST_OUTSTANDING_REQUESTS"


def variants_from_config(
    variants: Sequence[ProductionVariant], models: Mapping[str, Any] | None = None
) -> list[VariantSpec]:
    """The VariantSpecs of an EndpointConfig's ProductionVariants.

    `models` (name -> anything), when given, is checked for every ModelName the config uses.
    """
    specs: list[VariantSpec] = []
    seen: set[str] = set()
    for pv in variants:
        name = pv.VariantName
        if name in seen:
            raise ValidationError(
                f"The EndpointConfig names variant {name} twice; variant names must be unique."
            )
        seen.add(name)
        if pv.ServerlessConfig is not None:
            raise ValidationError(
                f"Variant {name} is serverless; Greenshift hosts instance-based variants only. "
                "Give InstanceType and InitialInstanceCount instead."
            )
        if pv.InstanceType is None or pv.InitialInstanceCount is None:
            raise ValidationError(f"Variant {name} needs InstanceType and InitialInstanceCount.")
        if pv.ModelName is None:
            raise ValidationError(f"Variant {name} needs a ModelName.")
        if models is not None and pv.ModelName not in models:
            raise ValidationError(f'Could not find model "{pv.ModelName}".')
        routing = DEFAULT_ROUTING
        if pv.RoutingConfig is not None and pv.RoutingConfig.RoutingStrategy is not None:
            routing = pv.RoutingConfig.RoutingStrategy
        specs.append(
            VariantSpec(
                variant=name,
                model_name=pv.ModelName,
                instance_type=pv.InstanceType,
                instance_count=pv.InitialInstanceCount,
                weight=(
                    DEFAULT_WEIGHT if pv.InitialVariantWeight is None else pv.InitialVariantWeight
                ),
                routing_strategy=routing,
                startup_timeout_seconds=(
                    pv.ContainerStartupHealthCheckTimeoutInSeconds
                    or DEFAULT_STARTUP_TIMEOUT_SECONDS
                ),
                model_data_download_timeout_seconds=(
                    pv.ModelDataDownloadTimeoutInSeconds or DEFAULT_DOWNLOAD_TIMEOUT_SECONDS
                ),
            )
        )
    return specs


def retained(
    current: Sequence[VariantSpec], new: Sequence[VariantSpec], request: UpdateEndpointInput
) -> tuple[list[VariantSpec], list[str]]:
    """Apply RetainAllVariantProperties / ExcludeRetainedVariantProperties to the new variants.

    Same-named variants keep their current DesiredInstanceCount and DesiredWeight unless the
    property is excluded; returns the specs and a note per variant that changed.
    """
    if not request.RetainAllVariantProperties:
        return list(new), []
    excluded = {p.VariantPropertyType for p in request.ExcludeRetainedVariantProperties or []}
    keep_count = "DesiredInstanceCount" not in excluded
    keep_weight = "DesiredWeight" not in excluded
    by_name = {spec.variant: spec for spec in current}
    out: list[VariantSpec] = []
    notes: list[str] = []
    for spec in new:
        old = by_name.get(spec.variant)
        if old is None:
            out.append(spec)
            continue
        update: dict[str, Any] = {}
        if keep_count:
            update["instance_count"] = old.instance_count
        if keep_weight:
            update["weight"] = old.weight
        kept = spec.model_copy(update=update)
        if kept != spec:
            notes.append(
                f"RetainAllVariantProperties: variant {spec.variant} keeps "
                + ", ".join(
                    part
                    for part, on in (
                        (f"{old.instance_count} instance(s)", keep_count),
                        (f"weight {old.weight:g}", keep_weight),
                    )
                    if on
                )
                + " instead of the new config's "
                f"{spec.instance_count} instance(s), weight {spec.weight:g}."
            )
        out.append(kept)
    return out, notes
