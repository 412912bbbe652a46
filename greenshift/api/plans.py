"""The plan of a request, as the API needs it: validation by the planner, and the peak.

The pure planner (greenshift.planning.planner) is the authority: it refuses what cannot be
carried out (a canary larger than half the fleet, rolling on several variants, variant names not
kept, ...) and its `peak_instances` is what the quota is checked against. The API turns records
and configs into VariantSpecs with the planning package's own helpers, so defaults are applied
once and `PlanDeployment` shows exactly what the workflow will plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from greenshift.api.limits import InstanceAsk, rolling_peak
from greenshift.contracts import sagemaker_shapes as sm
from greenshift.errors import ValidationError
from greenshift.planning import planner
from greenshift.planning.model import Plan, Strategy, VariantSpec
from greenshift.planning.specs import variants_from_config
from greenshift.registry.records import EndpointConfigRecord, EndpointRecord, ModelRecord


@dataclass(frozen=True)
class Planned:
    plan: Plan
    ask: InstanceAsk


def current_specs(record: EndpointRecord) -> list[VariantSpec]:
    """The serving variants with their desired counts and weights (what the planner calls
    `current`)."""
    return [
        VariantSpec(
            variant=v.variant,
            model_name=v.model_name,
            instance_type=v.instance_type,
            instance_count=v.desired_instance_count,
            weight=v.desired_weight,
        )
        for v in record.variants
    ]


def config_variants(config: EndpointConfigRecord) -> list[sm.ProductionVariant]:
    return sm.CreateEndpointConfigInput.from_wire(config.spec).ProductionVariants


def _now(record: EndpointRecord) -> int:
    return sum(v.current_instance_count for v in record.variants)


def plan_create(
    request: sm.CreateEndpointInput,
    config: EndpointConfigRecord,
    models: dict[str, ModelRecord],
) -> Planned:
    plan = planner.plan_create(variants_from_config(config_variants(config), models))
    ask = InstanceAsk("CreateEndpoint", request.EndpointName, plan.peak_instances, 0, "create")
    return Planned(plan, ask)


def _rolling_alternative(
    record: EndpointRecord, request: sm.UpdateEndpointInput, plan: Plan
) -> int | None:
    """The peak of the same update done rolling with the smallest batch, when one would be
    allowed (one variant, same name); None otherwise."""
    if plan.strategy == Strategy.ROLLING or len(plan.green) != 1 or len(plan.blue) != 1:
        return None
    if plan.green[0].variant != plan.blue[0].variant:
        return None
    return rolling_peak(_now(record), plan.green[0].instance_count)


def plan_update(
    record: EndpointRecord,
    request: sm.UpdateEndpointInput,
    config: EndpointConfigRecord,
    models: dict[str, ModelRecord],
) -> Planned:
    last = (
        sm.DeploymentConfig.from_wire(record.last_deployment_config)
        if record.last_deployment_config
        else None
    )
    new = variants_from_config(config_variants(config), models)
    plan = planner.plan_update(current_specs(record), new, request, last)
    strategy = "rolling" if plan.strategy == Strategy.ROLLING else "blue/green"
    ask = InstanceAsk(
        "UpdateEndpoint",
        record.name,
        plan.peak_instances,
        _now(record),
        strategy,
        _rolling_alternative(record, request, plan),
    )
    return Planned(plan, ask)


def plan_weights(
    record: EndpointRecord, request: sm.UpdateEndpointWeightsAndCapacitiesInput
) -> Planned:
    if not record.variants:
        raise ValidationError(f'Endpoint "{record.arn}" has no serving variants to change.')
    plan = planner.plan_weights(current_specs(record), request.DesiredWeightsAndCapacities)
    ask = InstanceAsk(
        "UpdateEndpointWeightsAndCapacities",
        record.name,
        plan.peak_instances,
        _now(record),
        "in place",
    )
    return Planned(plan, ask)
