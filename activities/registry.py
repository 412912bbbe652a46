"""Registry activities: validate a request against the registry, plan it, take the endpoint for
one operation (compare-and-set), record progress and events, settle the endpoint at the end.

Every method is synchronous (SQLAlchemy) and runs in the worker's thread pool.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

from temporalio import activity

from activities.errors import business_errors
from activities.models import (
    FINISH,
    PLAN_ROLLBACK,
    PREPARE_CREATE,
    PREPARE_DELETE,
    PREPARE_UPDATE,
    PREPARE_WEIGHTS,
    RECORD_EVENT,
    RECORD_PROGRESS,
    RELEASE_ENDPOINT,
    REMOVE_ENDPOINT,
    SET_STATUS,
    DeploymentRef,
    EventInput,
    FinishInput,
    Prepared,
    PreparedDelete,
    PrepareInput,
    ProgressInput,
    ReleaseInput,
    RollbackInput,
    RollbackPlan,
    StatusInput,
)
from activities.planner import Planner
from activities.progress import pending_at
from greenshift import admission, naming
from greenshift.admission import DELETABLE, REWEIGHTABLE, UPDATABLE
from greenshift.contracts.sagemaker_shapes import (
    CreateEndpointInput,
    UpdateEndpointInput,
    UpdateEndpointWeightsAndCapacitiesInput,
)
from greenshift.contracts.tagging import tag_pairs
from greenshift.errors import ResourceInUse
from greenshift.fleet.modeldata import container_of
from greenshift.names import fleet_key, parse_fleet_key
from greenshift.planning.model import Plan, Role, VariantSpec
from greenshift.ports import AlarmSource
from greenshift.registry.api import Registry
from greenshift.registry.records import (
    DeploymentEvent,
    DeploymentRecord,
    EndpointRecord,
    FleetRecord,
    ModelRecord,
    VariantState,
)
from greenshift.settings import Settings
from greenshift.status import DeploymentOutcome, EndpointStatus

# Plans of deployments in flight kept by record_progress (a plan is a few kB).
PLAN_CACHE_SIZE = 512


class RegistryActivities:
    """Activities over the registry; admission (greenshift.admission) validates and plans,
    `alarms` answers whether alarm names exist, `planner` gives the rollback steps."""

    def __init__(
        self, registry: Registry, settings: Settings, alarms: AlarmSource, planner: Planner
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.alarms = alarms
        self.planner = planner
        self._plans: OrderedDict[str, tuple[Plan, str, datetime]] = OrderedDict()
        self._plans_lock = threading.Lock()

    def _green_fleets(
        self,
        ref: DeploymentRef,
        plan: Plan,
        config_name: str,
        models: dict[str, ModelRecord],
        at: datetime,
    ) -> dict[str, str]:
        """Fleet records of the new side, made before any instance (idempotent)."""
        fleets: dict[str, str] = {}
        for spec in plan.green:
            fleet_id = naming.fleet_id(ref.endpoint, ref.deployment_id, spec.variant)
            fleets[fleet_key(Role.GREEN, spec.variant)] = fleet_id
            if self.registry.get_fleet(fleet_id) is None:
                self.registry.upsert_fleet(
                    FleetRecord(
                        fleet_id=fleet_id,
                        endpoint=ref.endpoint,
                        deployment_id=ref.deployment_id,
                        variant=spec.variant,
                        config_name=config_name,
                        model_name=spec.model_name,
                        instance_type=spec.instance_type,
                        model_spec=models[spec.model_name].spec,  # the CreateModel request
                        startup_timeout_seconds=spec.startup_timeout_seconds,
                        model_data_download_timeout_seconds=(
                            spec.model_data_download_timeout_seconds
                        ),
                        created_at=at,
                    )
                )
        return fleets

    def _record_plan(self, deployment_id: str, plan: Plan) -> None:
        """The API reserves the endpoint before the workflow plans: store the plan (which
        progress is computed from) and its alarms (which the alarm watcher reads)."""
        record = self.registry.get_deployment(deployment_id)
        if record is None:
            return
        plan_doc = plan.model_dump(mode="json")
        if record.plan != plan_doc or record.alarms != list(plan.alarms):
            self.registry.update_deployment(
                record.model_copy(update={"plan": plan_doc, "alarms": list(plan.alarms)})
            )

    @staticmethod
    def _blue_fleets(endpoint: EndpointRecord) -> dict[str, str]:
        return {
            fleet_key(Role.BLUE, v.variant): v.fleet_id for v in endpoint.variants if v.fleet_id
        }

    def _deployment(
        self,
        data: PrepareInput,
        operation: str,
        endpoint: str,
        plan: Plan | None,
        from_config: str | None,
        to_config: str | None,
        alarms: list[str],
    ) -> DeploymentRecord:
        return DeploymentRecord(
            deployment_id=data.deployment_id,
            endpoint=endpoint,
            operation=operation,
            workflow_id=data.workflow_id,
            request=data.request,
            plan=plan.model_dump(mode="json") if plan else None,
            alarms=alarms,
            from_config=from_config,
            to_config=to_config,
            started_at=data.started_at,
        )

    # --- prepare ---------------------------------------------------------------------------
    @activity.defn(name=PREPARE_UPDATE)
    @business_errors
    def prepare_update(self, data: PrepareInput) -> Prepared:
        request = UpdateEndpointInput.from_wire(data.request)
        # The API's admission, on the registry as it is now (a workflow started from Temporal
        # never met the API; one the API started is checked again, races included).
        endpoint, admitted = admission.admit_update(
            self.registry, self.settings, self.alarms, request, data.deployment_id
        )
        ref = DeploymentRef(endpoint=endpoint.name, deployment_id=data.deployment_id)
        config, models, plan = admitted.config, admitted.models, admitted.planned.plan
        deployment_config = (
            endpoint.last_deployment_config
            if request.RetainDeploymentConfig
            else (request.DeploymentConfig.to_wire() if request.DeploymentConfig else None)
        )
        deployment = self._deployment(
            data,
            "UpdateEndpoint",
            endpoint.name,
            plan,
            endpoint.config_name,
            config.name,
            list(plan.alarms),
        )
        endpoint = self.registry.begin_operation(
            endpoint.name, UPDATABLE, EndpointStatus.UPDATING, deployment
        )
        self._record_plan(data.deployment_id, plan)
        fleets = self._blue_fleets(endpoint)
        fleets.update(self._green_fleets(ref, plan, config.name, models, data.started_at))
        return Prepared(
            ref=ref,
            endpoint_arn=endpoint.arn,
            plan=plan,
            fleets=fleets,
            from_config=endpoint.config_name,
            to_config=config.name,
            config_snapshot=admission.snapshot(config, models),
            last_deployment_config=deployment_config,
            started_at=data.started_at,
        )

    @activity.defn(name=PREPARE_CREATE)
    @business_errors
    def prepare_create(self, data: PrepareInput) -> Prepared:
        request = CreateEndpointInput.from_wire(data.request)
        existing = self.registry.get_endpoint(request.EndpointName)
        if existing is not None and existing.current_deployment_id != data.deployment_id:
            raise ResourceInUse(f'Cannot create already existing endpoint "{existing.arn}".')
        tag_pairs(request.Tags)  # refuse reserved keys before anything is written
        config, models, planned = admission.admit_create(
            self.registry, self.settings, self.alarms, request, existing
        )
        plan = planned.plan
        deployment_config = request.DeploymentConfig.to_wire() if request.DeploymentConfig else None
        name = existing.name if existing else request.EndpointName
        ref = DeploymentRef(endpoint=name, deployment_id=data.deployment_id)
        arn = self.settings.arn("endpoint", name)
        if existing is None:
            record = EndpointRecord(
                name=name,
                arn=arn,
                status=EndpointStatus.CREATING,
                config_name=config.name,
                config_snapshot=admission.snapshot(config, models),
                last_deployment_config=deployment_config,
                current_deployment_id=data.deployment_id,
                created_at=data.started_at,
                last_modified=data.started_at,
            )
            deployment = self._deployment(data, "CreateEndpoint", name, plan, None, config.name, [])
            self.registry.create_endpoint(record, deployment)
            # Started from Temporal directly: the API did not store the request's Tags.
            self.registry.replace_tags(arn, tag_pairs(request.Tags))
        else:
            self._record_plan(data.deployment_id, plan)
        fleets = self._green_fleets(ref, plan, config.name, models, data.started_at)
        return Prepared(
            ref=ref,
            endpoint_arn=arn,
            plan=plan,
            fleets=fleets,
            to_config=config.name,
            config_snapshot=admission.snapshot(config, models),
            last_deployment_config=deployment_config,
            started_at=data.started_at,
        )

    @activity.defn(name=PREPARE_WEIGHTS)
    @business_errors
    def prepare_weights(self, data: PrepareInput) -> Prepared:
        request = UpdateEndpointWeightsAndCapacitiesInput.from_wire(data.request)
        endpoint, planned = admission.admit_weights(
            self.registry, self.settings, request, data.deployment_id
        )
        plan = planned.plan
        deployment = self._deployment(
            data,
            "UpdateEndpointWeightsAndCapacities",
            endpoint.name,
            plan,
            endpoint.config_name,
            endpoint.config_name,
            [],
        )
        endpoint = self.registry.begin_operation(
            endpoint.name, REWEIGHTABLE, EndpointStatus.UPDATING, deployment
        )
        self._record_plan(data.deployment_id, plan)
        # Desired* show the request at once; Current* follow as the steps run.
        wanted = {d.VariantName: d for d in request.DesiredWeightsAndCapacities}
        changed = False
        for variant in endpoint.variants:
            ask = wanted.get(variant.variant)
            if ask is None:
                continue
            if ask.DesiredWeight is not None and variant.desired_weight != ask.DesiredWeight:
                variant.desired_weight = ask.DesiredWeight
                changed = True
            count = ask.DesiredInstanceCount
            if count is not None and variant.desired_instance_count != count:
                variant.desired_instance_count = count
                changed = True
        if changed:
            endpoint = self.registry.save_endpoint(endpoint)
        fleets = self._blue_fleets(endpoint)
        # In place: the "green" side of the plan is the same fleets, resized.
        fleets.update({fleet_key(Role.GREEN, parse_fleet_key(k)[1]): v for k, v in fleets.items()})
        return Prepared(
            ref=DeploymentRef(endpoint=endpoint.name, deployment_id=data.deployment_id),
            endpoint_arn=endpoint.arn,
            plan=plan,
            fleets=fleets,
            from_config=endpoint.config_name,
            to_config=endpoint.config_name,
            config_snapshot=endpoint.config_snapshot,
            last_deployment_config=endpoint.last_deployment_config,
            started_at=data.started_at,
        )

    @activity.defn(name=PREPARE_DELETE)
    @business_errors
    def prepare_delete(self, data: PrepareInput) -> PreparedDelete:
        name = str(data.request.get("EndpointName", ""))
        endpoint = admission.admit_delete(self.registry, self.settings, name, data.deployment_id)
        deployment = self._deployment(
            data, "DeleteEndpoint", endpoint.name, None, endpoint.config_name, None, []
        )
        endpoint = self.registry.begin_operation(
            endpoint.name, DELETABLE, EndpointStatus.DELETING, deployment
        )
        fleets = [
            f.fleet_id for f in self.registry.list_fleets(endpoint.name, include_retired=True)
        ]
        return PreparedDelete(
            ref=DeploymentRef(endpoint=endpoint.name, deployment_id=data.deployment_id),
            endpoint_arn=endpoint.arn,
            fleet_ids=sorted(fleets),
        )

    # --- during the deployment -------------------------------------------------------------
    @activity.defn(name=PLAN_ROLLBACK)
    @business_errors
    def plan_rollback(self, data: RollbackInput) -> RollbackPlan:
        steps = self.planner.rollback_steps(data.plan, data.started_steps, list(data.undo))
        return RollbackPlan(steps=list(steps))

    @activity.defn(name=RECORD_PROGRESS)
    @business_errors
    def record_progress(self, data: ProgressInput) -> None:
        self.write_progress(data)

    def write_progress(self, data: ProgressInput) -> None:
        """Progress and its StepStarted event; also called by the step activities that carry
        their step's progress (StepInput.progress). Idempotent: a retry writes nothing new."""
        planned = self._planned(data.ref.deployment_id)
        if planned is None:
            return
        plan, config_name, started_at = planned
        pending = pending_at(
            plan,
            config_name=config_name,
            start_time=started_at,
            index=data.step_index,
            phase=data.phase,
            at=data.at,
            message=data.message,
            bake_ends_at=data.bake_ends_at,
            paused=data.paused,
        )
        # Progress and its event in one transaction: half the writes of a step.
        self.registry.record_progress(
            data.ref.endpoint,
            data.ref.deployment_id,
            pending,
            self._event_record(
                data.ref,
                "StepStarted",
                data.message,
                data.at,
                key=f"{data.phase}:{data.step_index}:{data.rollback_step}",
                detail={"phase": data.phase, "step": data.step_index},
            ),
        )

    def _planned(self, deployment_id: str) -> tuple[Plan, str, datetime] | None:
        """The plan progress is computed from, read once per deployment: prepare stores it before
        the first step and it never changes afterwards (a deployment without one yet is not
        remembered)."""
        with self._plans_lock:
            cached = self._plans.get(deployment_id)
        if cached is not None:
            return cached
        deployment = self.registry.get_deployment(deployment_id)
        if deployment is None or deployment.plan is None:
            return None
        planned = (
            Plan.model_validate(deployment.plan),
            deployment.to_config or "",
            deployment.started_at,
        )
        with self._plans_lock:
            self._plans[deployment_id] = planned
            while len(self._plans) > PLAN_CACHE_SIZE:
                self._plans.popitem(last=False)
        return planned

    @activity.defn(name=RECORD_EVENT)
    @business_errors
    def record_event(self, data: EventInput) -> None:
        self._event(data.ref, data.type, data.message, data.at, data.key, data.detail, data.actor)

    @activity.defn(name=SET_STATUS)
    @business_errors
    def set_status(self, data: StatusInput) -> None:
        self.registry.set_status(
            data.ref.endpoint, data.ref.deployment_id, data.status, data.reason
        )
        self._event(
            data.ref,
            "StatusChanged",
            f"{data.status.value}: {data.reason}",
            data.at,
            key=f"status:{data.status.value}",
        )

    @activity.defn(name=FINISH)
    @business_errors
    def finish_deployment(self, data: FinishInput) -> None:
        prepared = data.prepared
        # The Finished event in the endpoint's release transaction: one write, not two.
        finished = self._event_record(
            data.ref,
            "Finished",
            data.failure_reason or f"{data.outcome.value}.",
            data.at,
            key="finished",
            detail={"outcome": data.outcome.value, "status": data.status.value},
        )
        if data.succeeded:
            self.registry.finish_operation(
                data.ref.endpoint,
                data.ref.deployment_id,
                status=data.status,
                outcome=data.outcome,
                config_name=prepared.to_config,
                config_snapshot=prepared.config_snapshot,
                variants=final_variants(
                    prepared.plan.green, prepared.fleets, prepared.config_snapshot
                ),
                failure_reason=None,
                last_deployment_config=prepared.last_deployment_config,
                event=finished,
            )
        else:
            self.registry.finish_operation(
                data.ref.endpoint,
                data.ref.deployment_id,
                status=data.status,
                outcome=data.outcome,
                failure_reason=data.failure_reason,
                last_deployment_config=prepared.last_deployment_config,
                event=finished,
            )

    @activity.defn(name=RELEASE_ENDPOINT)
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

    @activity.defn(name=REMOVE_ENDPOINT)
    @business_errors
    def remove_endpoint(self, ref: DeploymentRef) -> None:
        for fleet in self.registry.list_fleets(ref.endpoint, include_retired=True):
            for instance in self.registry.list_instances(fleet_id=fleet.fleet_id):
                self.registry.delete_instance(instance.instance_id)
        self.registry.delete_endpoint_record(ref.endpoint, ref.deployment_id)

    def _event(
        self,
        ref: DeploymentRef,
        type_: str,
        message: str,
        at: datetime,
        key: str,
        detail: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> None:
        self.registry.append_event(self._event_record(ref, type_, message, at, key, detail, actor))

    @staticmethod
    def _event_record(
        ref: DeploymentRef,
        type_: str,
        message: str,
        at: datetime,
        key: str,
        detail: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> DeploymentEvent:
        return DeploymentEvent(
            deployment_id=ref.deployment_id,
            endpoint=ref.endpoint,
            at=at,
            type=type_,
            message=message,
            detail=detail or {},
            actor=actor,
            key=f"{ref.deployment_id}:{key}",
        )


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
