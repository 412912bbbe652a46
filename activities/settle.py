"""Settle an endpoint whose workflow is gone (terminated, timed out, lost with its history).

The registry still says a deployment holds the endpoint, so every operation on it is refused, and
nothing will ever release it: this activity rebuilds, from the registry alone, what the dead
workflow knew (its recorded plan, its fleets, how far it got), so the `SettleEndpoint` workflow
can run the ordinary rollback. Rollback steps are absolute, so counting a step that may not have
happened as done is safe ("it happened" covers "it did not").
"""

from __future__ import annotations

from temporalio import activity

from activities.errors import business_errors
from activities.models import DeploymentRef, Prepared, SettleInput, SettlePlan
from greenshift import naming
from greenshift.names import CREATE_ENDPOINT, PREPARE_SETTLE, fleet_key, parse_fleet_key
from greenshift.planning.model import Plan, Role
from greenshift.registry.api import Registry
from greenshift.registry.records import DeploymentRecord, EndpointRecord
from greenshift.status import DeploymentOutcome, EndpointStatus

CREATE = CREATE_ENDPOINT
WEIGHTS = "UpdateEndpointWeightsAndCapacities"


class SettleActivities:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @activity.defn(name=PREPARE_SETTLE)
    @business_errors
    def prepare_settle(self, data: SettleInput) -> SettlePlan:
        endpoint = self.registry.get_endpoint(data.endpoint)
        deployment = self.registry.get_deployment(data.deployment_id)
        if (
            endpoint is None
            or deployment is None
            or endpoint.current_deployment_id != data.deployment_id
            or deployment.outcome is not DeploymentOutcome.RUNNING
        ):
            return SettlePlan(action="nothing")
        if deployment.plan is None or endpoint.status is EndpointStatus.DELETING:
            # Nothing planned means nothing provisioned or routed; a delete half done leaves
            # Failed, where DeleteEndpoint is accepted again and stops whatever is left.
            return SettlePlan(action="release")
        plan = Plan.model_validate(deployment.plan)
        started = settle_started_steps(endpoint, plan)
        prepared = Prepared(
            ref=DeploymentRef(endpoint=endpoint.name, deployment_id=data.deployment_id),
            endpoint_arn=endpoint.arn,
            plan=plan,
            fleets=fleets_of(endpoint, deployment, plan),
            from_config=deployment.from_config,
            to_config=deployment.to_config or endpoint.config_name,
            config_snapshot=endpoint.config_snapshot,
            last_deployment_config=endpoint.last_deployment_config,
            started_at=deployment.started_at,
        )
        index = endpoint.pending.step_index if endpoint.pending else None
        return SettlePlan(
            action="clean_up" if deployment.operation == CREATE else "rollback",
            prepared=prepared,
            started_steps=started,
            step_index=index if index is not None else -1,
        )


def settle_started_steps(endpoint: EndpointRecord, plan: Plan) -> int:
    """How many steps may have begun: the progress record says which step was reached (it is
    written before a step's activity runs); without one, assume all of them (always safe)."""
    pending = endpoint.pending
    if pending is None or pending.step_index is None:
        return len(plan.steps)
    return min(len(plan.steps), max(0, pending.step_index + 1))


def fleets_of(endpoint: EndpointRecord, deployment: DeploymentRecord, plan: Plan) -> dict[str, str]:
    """The fleet ids the dead workflow used, as its prepare activity derived them."""
    blue: dict[str, str] = {
        fleet_key(Role.BLUE, v.variant): v.fleet_id for v in endpoint.variants if v.fleet_id
    }
    if deployment.operation == WEIGHTS:
        # In place: the "green" side is the serving fleets, resized.
        green: dict[str, str] = {
            fleet_key(Role.GREEN, parse_fleet_key(k)[1]): v for k, v in blue.items()
        }
    else:
        green = {
            fleet_key(Role.GREEN, s.variant): naming.fleet_id(
                endpoint.name, deployment.deployment_id, s.variant
            )
            for s in plan.green
        }
    return {**blue, **green}
