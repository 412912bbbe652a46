"""Finish activities: the end of a deployment. Settle the endpoint and end the deployment record
in one transaction (with the Finished event), release an endpoint that was never changed, or
remove a deleted endpoint's records.

Every method is synchronous (SQLAlchemy) and runs in the worker's thread pool.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity

from activities.errors import business_errors
from activities.models import (
    DeploymentRef,
    FinishInput,
    ReleaseInput,
)
from activities.recording import event_record
from greenshift import names
from greenshift.fleet.modeldata import container_of
from greenshift.names import fleet_key
from greenshift.planning.model import Role, VariantSpec
from greenshift.registry.api import Registry
from greenshift.registry.records import VariantState
from greenshift.status import DeploymentOutcome, EndpointStatus


class FinishActivities:
    """The last registry writes of a deployment."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @activity.defn(name=names.FINISH)
    @business_errors
    def finish_deployment(self, data: FinishInput) -> None:
        prepared = data.prepared
        # The Finished event in the endpoint's release transaction: one write, not two.
        finished = event_record(
            data.ref,
            "Finished",
            data.failure_reason or f"{data.outcome.value}.",
            data.at,
            key="finished",
            detail={"outcome": data.outcome.value, "status": data.status.value},
        )
        # A success also settles the endpoint on its new config and variants; a failure keeps
        # the ones it had (the rollback restored their traffic) and says why.
        settled: dict[str, Any] = (
            {
                "config_name": prepared.to_config,
                "config_snapshot": prepared.config_snapshot,
                "variants": final_variants(
                    prepared.plan.green, prepared.fleets, prepared.config_snapshot
                ),
            }
            if data.succeeded
            else {}
        )
        self.registry.finish_operation(
            data.ref.endpoint,
            data.ref.deployment_id,
            status=data.status,
            outcome=data.outcome,
            failure_reason=None if data.succeeded else data.failure_reason,
            last_deployment_config=prepared.last_deployment_config,
            event=finished,
            **settled,
        )

    @activity.defn(name=names.RELEASE_ENDPOINT)
    @business_errors
    def release_endpoint(self, data: ReleaseInput) -> None:
        endpoint = self.registry.get_endpoint(data.endpoint)
        if endpoint is None or endpoint.current_deployment_id != data.deployment_id:
            return  # never taken (the usual refusal), or already released
        # Nothing was provisioned or routed yet: the old fleets still serve as before. A create
        # or delete that cannot go on leaves the endpoint Failed, where DeleteEndpoint works.
        settled = (
            EndpointStatus.FAILED
            if endpoint.status in (EndpointStatus.CREATING, EndpointStatus.DELETING)
            else EndpointStatus.IN_SERVICE
        )
        self.registry.finish_operation(
            endpoint.name,
            data.deployment_id,
            status=settled,
            outcome=DeploymentOutcome.FAILED,
            failure_reason=data.reason,
        )

    @activity.defn(name=names.REMOVE_ENDPOINT)
    @business_errors
    def remove_endpoint(self, ref: DeploymentRef) -> None:
        for fleet in self.registry.list_fleets(ref.endpoint, include_retired=True):
            instances = self.registry.list_instances(fleet_id=fleet.fleet_id)
            self.registry.delete_instances([i.instance_id for i in instances])
        self.registry.delete_endpoint_record(ref.endpoint, ref.deployment_id)


def final_variants(
    green: tuple[VariantSpec, ...], fleets: dict[str, str], snapshot: dict[str, Any]
) -> list[VariantState]:
    """The endpoint's variants once the deployment succeeded: the green side, settled."""
    images = {
        name: container_of(spec).get("Image")
        for name, spec in (snapshot.get("Models") or {}).items()
    }
    return [
        VariantState(
            variant=spec.variant,
            model_name=spec.model_name,
            instance_type=spec.instance_type,
            fleet_id=fleets.get(fleet_key(Role.GREEN, spec.variant)),
            current_weight=spec.weight,
            desired_weight=spec.weight,
            current_instance_count=spec.instance_count,
            desired_instance_count=spec.instance_count,
            image=images.get(spec.model_name),
        )
        for spec in green
    ]
