"""Prepare activities: admit a request against the registry as it is now (greenshift.admission,
the same rules the API applies), plan it, take the endpoint for the operation (compare-and-set)
and make the records of the new fleets. Each is idempotent: a retry finds its own deployment
holding the endpoint and returns the same answer.

Every method is synchronous (SQLAlchemy) and runs in the worker's thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import activity

from activities.errors import business_errors
from activities.models import (
    DeploymentRef,
    PlaceStepInput,
    Prepared,
    PreparedDelete,
    PrepareInput,
    ProgressInput,
)
from greenshift import admission, names, naming
from greenshift.admission import DELETABLE, REWEIGHTABLE, UPDATABLE
from greenshift.contracts.sagemaker_shapes import (
    CreateEndpointInput,
    UpdateEndpointInput,
    UpdateEndpointWeightsAndCapacitiesInput,
)
from greenshift.contracts.tagging import tag_pairs
from greenshift.errors import GreenshiftError, ResourceInUse
from greenshift.hosts.messages import PlaceInput, Placement
from greenshift.names import fleet_key, parse_fleet_key
from greenshift.planning.model import Plan, ProvisionStep, Role
from greenshift.ports import AlarmSource
from greenshift.registry.api import Registry
from greenshift.registry.records import DeploymentRecord, EndpointRecord, FleetRecord, ModelRecord
from greenshift.settings import Settings
from greenshift.status import EndpointStatus


class PrepareActivities:
    """The first activity of every deployment; admission (greenshift.admission) validates and
    plans, `alarms` answers whether alarm names exist, `begin_step` records a step's progress
    and places it (HostPlacementActivities.begin_step: what PlaceStep does)."""

    def __init__(
        self,
        registry: Registry,
        settings: Settings,
        alarms: AlarmSource,
        begin_step: Callable[[PlaceStepInput], Placement] | None = None,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.alarms = alarms
        self.begin_step = begin_step

    def _begin_first_step(
        self, data: PrepareInput, ref: DeploymentRef, plan: Plan, fleets: dict[str, str]
    ) -> Placement | None:
        """The plan's first step begun here, in the preparation's local activity, when the
        workflow asks (PrepareInput.first_step_phase), the step provisions a fleet this
        preparation made and nothing comes between them (an alarm check would): one local
        activity fewer per deployment (issue 17). None: the workflow begins it itself, as
        before. A placement refused here (no room, say) is left to the workflow's own, which
        meets it where a failed step is handled."""
        if data.first_step_phase is None or self.begin_step is None or plan.alarms:
            return None
        step = plan.steps[0].step if plan.steps else None
        if not isinstance(step, ProvisionStep) or step.fleet.key not in fleets:
            return None
        begun = PlaceStepInput(
            progress=ProgressInput(
                ref=ref,
                step_index=0,
                phase=data.first_step_phase,
                message=step.message,
                at=data.started_at,
            ),
            place=PlaceInput(fleet_id=fleets[step.fleet.key], count=step.count, grow=True),
        )
        try:
            return self.begin_step(begun)
        except GreenshiftError:
            return None

    def _green_fleets(
        self,
        ref: DeploymentRef,
        plan: Plan,
        config_name: str,
        models: dict[str, ModelRecord],
        at: datetime,
    ) -> dict[str, str]:
        """Fleet records of the new side, made before any instance (idempotent), each with
        the count its first provision step brings it to: the step's placement, in the same
        workflow task as a rule, then has no fleet record to write (issue 17). Nothing acts on
        that count before the step: the healer replaces only instances lost with a host."""
        fleets: dict[str, str] = {}
        for spec in plan.green:
            key = fleet_key(Role.GREEN, spec.variant)
            fleet_id = naming.fleet_id(ref.endpoint, ref.deployment_id, spec.variant)
            fleets[key] = fleet_id
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
                        desired_count=plan.first_provision_count(key),
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

    @activity.defn(name=names.PREPARE_UPDATE)
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
            first_placement=self._begin_first_step(data, ref, plan, fleets),
        )

    @activity.defn(name=names.PREPARE_CREATE)
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
            first_placement=self._begin_first_step(data, ref, plan, fleets),
        )

    @activity.defn(name=names.PREPARE_WEIGHTS)
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

    @activity.defn(name=names.PREPARE_DELETE)
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
