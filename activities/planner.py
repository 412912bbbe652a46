"""The planner as the registry activities use it: records in, a Plan out.

Planning runs inside an activity so the plan is recorded in the workflow's history: a planner
change can never alter a deployment already in flight, and replay never re-plans. This module
turns registry records into the pure planner's VariantSpecs (`greenshift.planning`) in one place.
"""

from __future__ import annotations

from typing import Any, Protocol

from greenshift.contracts.sagemaker_shapes import (
    CreateEndpointInput,
    DeploymentConfig,
    ProductionVariant,
    UpdateEndpointInput,
    UpdateEndpointWeightsAndCapacitiesInput,
)
from greenshift.planning import planner as pure
from greenshift.planning import rollback
from greenshift.planning.model import Plan, Step, VariantSpec
from greenshift.planning.specs import variants_from_config
from greenshift.registry.records import EndpointConfigRecord, EndpointRecord, ModelRecord


class Planner(Protocol):
    def plan_update(
        self,
        endpoint: EndpointRecord,
        request: UpdateEndpointInput,
        config: EndpointConfigRecord,
        models: dict[str, ModelRecord],
    ) -> Plan: ...

    def plan_create(
        self,
        request: CreateEndpointInput,
        config: EndpointConfigRecord,
        models: dict[str, ModelRecord],
    ) -> Plan: ...

    def plan_weights(
        self, endpoint: EndpointRecord, request: UpdateEndpointWeightsAndCapacitiesInput
    ) -> Plan: ...

    def rollback_steps(self, plan: Plan, started_steps: int, undo: list[Step]) -> list[Step]:
        """The steps that restore the state before the deployment, given that the first
        `started_steps` steps began (their undo steps, `undo`, are registered in that order)."""


def _variants(spec: dict[str, Any]) -> list[ProductionVariant]:
    return [ProductionVariant.model_validate(v) for v in spec.get("ProductionVariants", [])]


def serving_specs(endpoint: EndpointRecord) -> list[VariantSpec]:
    """The blue side: the deployed config's variants at their current desired counts/weights."""
    config = (endpoint.config_snapshot or {}).get("EndpointConfig") or {}
    specs = {s.variant: s for s in variants_from_config(_variants(config))}
    out: list[VariantSpec] = []
    for state in endpoint.variants:
        base = specs.get(state.variant)
        update = {
            "instance_count": state.desired_instance_count,
            "weight": state.desired_weight,
            "model_name": state.model_name,
            "instance_type": state.instance_type,
        }
        if base is None:
            out.append(VariantSpec(variant=state.variant, **update))
        else:
            out.append(base.model_copy(update=update))
    return out


class SagemakerPlanner:
    """`Planner` over the pure planner in `greenshift.planning`."""

    def plan_update(
        self,
        endpoint: EndpointRecord,
        request: UpdateEndpointInput,
        config: EndpointConfigRecord,
        models: dict[str, ModelRecord],
    ) -> Plan:
        last = (
            DeploymentConfig.model_validate(endpoint.last_deployment_config)
            if endpoint.last_deployment_config
            else None
        )
        new = variants_from_config(_variants(config.spec), models)
        return pure.plan_update(serving_specs(endpoint), new, request, last)

    def plan_create(
        self,
        request: CreateEndpointInput,
        config: EndpointConfigRecord,
        models: dict[str, ModelRecord],
    ) -> Plan:
        return pure.plan_create(variants_from_config(_variants(config.spec), models))

    def plan_weights(
        self, endpoint: EndpointRecord, request: UpdateEndpointWeightsAndCapacitiesInput
    ) -> Plan:
        return pure.plan_weights(serving_specs(endpoint), request.DesiredWeightsAndCapacities)

    def rollback_steps(self, plan: Plan, started_steps: int, undo: list[Step]) -> list[Step]:
        # A step that began may have taken effect even if it seemed to fail (saga), and every
        # step is absolute: roll back from the state after all the steps that began.
        return list(rollback.rollback_steps(plan, started_steps))
