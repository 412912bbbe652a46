"""The planner as the registry activities use it: records in, a Plan out.

Planning runs inside an activity so the plan is recorded in the workflow's history: a planner
change can never alter a deployment already in flight, and replay never re-plans. The records ->
VariantSpecs adapters and the plans themselves are `greenshift.admission`'s, the same functions
the API's PlanDeployment calls; this module adds only the rollback steps, and the activity that
asks for them.
"""

from __future__ import annotations

from typing import Protocol

from temporalio import activity

from activities.errors import business_errors
from activities.models import RollbackInput, RollbackPlan
from greenshift import admission, names
from greenshift.admission import serving_specs
from greenshift.contracts.sagemaker_shapes import (
    CreateEndpointInput,
    UpdateEndpointInput,
    UpdateEndpointWeightsAndCapacitiesInput,
)
from greenshift.planning import rollback
from greenshift.planning.model import Plan, Step
from greenshift.registry.records import EndpointConfigRecord, EndpointRecord, ModelRecord

__all__ = ["Planner", "PlannerActivities", "SagemakerPlanner", "serving_specs"]


class Planner(Protocol):
    def rollback_steps(self, plan: Plan, started_steps: int) -> list[Step]:
        """The steps that restore the state before the deployment, given that the first
        `started_steps` steps began."""


class SagemakerPlanner:
    """`Planner` over the pure planner in `greenshift.planning`; its plan_* are admission's."""

    def plan_update(
        self,
        endpoint: EndpointRecord,
        request: UpdateEndpointInput,
        config: EndpointConfigRecord,
        models: dict[str, ModelRecord],
    ) -> Plan:
        return admission.plan_update(endpoint, request, config, models).plan

    def plan_create(
        self,
        request: CreateEndpointInput,
        config: EndpointConfigRecord,
        models: dict[str, ModelRecord],
    ) -> Plan:
        return admission.plan_create(request, config, models).plan

    def plan_weights(
        self, endpoint: EndpointRecord, request: UpdateEndpointWeightsAndCapacitiesInput
    ) -> Plan:
        return admission.plan_weights(endpoint, request).plan

    def rollback_steps(self, plan: Plan, started_steps: int) -> list[Step]:
        # A step that began may have taken effect even if it seemed to fail (a timeout after the
        # effect), and every step is absolute: roll back from the state after all that began.
        return list(rollback.rollback_steps(plan, started_steps))


class PlannerActivities:
    """The rollback plan of a deployment, from `planner` (recorded in the workflow's history)."""

    def __init__(self, planner: Planner) -> None:
        self.planner = planner

    @activity.defn(name=names.PLAN_ROLLBACK)
    @business_errors
    def plan_rollback(self, data: RollbackInput) -> RollbackPlan:
        steps = self.planner.rollback_steps(data.plan, data.started_steps)
        return RollbackPlan(steps=list(steps))
