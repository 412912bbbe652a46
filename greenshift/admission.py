"""Admission: every rule a request to change an endpoint must pass before it may start, once.

Two doors lead to a deployment: the API (`greenshift.api.endpoints`, `Greenshift.PlanDeployment`)
and Temporal itself (`temporal workflow start ...`), whose workflows run the prepare activities
(`activities.prepare`). Both call the functions here on the same records, so they refuse the
same requests with the same messages and `PlanDeployment` shows exactly the plan the workflow
will run (issue 13). The functions are synchronous (the registry is): the API runs them off its
event loop with `ctx.run`, the activities in the worker's thread pool.

Lookups raise SEMANTICS.md's not-found messages; the status rules and SageMaker's refusals are
in `greenshift.messages`; the pure planner (`greenshift.planning`) is the authority on plans, and
this module only adapts registry records into its VariantSpecs; the quotas are `greenshift.limits`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from greenshift import messages
from greenshift.contracts import sagemaker_shapes as sm
from greenshift.errors import ResourceInUse, ResourceNotFound, ValidationError
from greenshift.limits import InstanceAsk, check_endpoints, check_instances, rolling_peak
from greenshift.planning import planner
from greenshift.planning.model import Plan, Strategy, VariantSpec
from greenshift.planning.specs import variants_from_config
from greenshift.ports import AlarmSource
from greenshift.registry.api import Registry
from greenshift.registry.records import EndpointConfigRecord, EndpointRecord, ModelRecord
from greenshift.settings import Settings
from greenshift.status import IN_PROGRESS, EndpointStatus

UPDATABLE = frozenset({EndpointStatus.IN_SERVICE, EndpointStatus.UPDATE_ROLLBACK_FAILED})
DELETABLE = frozenset(
    {EndpointStatus.IN_SERVICE, EndpointStatus.FAILED, EndpointStatus.UPDATE_ROLLBACK_FAILED}
)
REWEIGHTABLE = frozenset({EndpointStatus.IN_SERVICE})


@dataclass(frozen=True)
class Planned:
    """A plan and what it asks of the quotas."""

    plan: Plan
    ask: InstanceAsk


@dataclass(frozen=True)
class Admitted:
    """An UpdateEndpoint that passed every rule: the config and models it deploys, its plan."""

    config: EndpointConfigRecord
    models: dict[str, ModelRecord]
    planned: Planned

    @property
    def alarms(self) -> list[str]:
        return list(self.planned.plan.alarms)


# --- lookups ---------------------------------------------------------------------------------


def endpoint_not_found(settings: Settings, name: str) -> ResourceNotFound:
    return ResourceNotFound(f'Could not find endpoint "{settings.arn("endpoint", name)}".')


def config_not_found(settings: Settings, name: str) -> ResourceNotFound:
    arn = settings.arn("endpoint-config", name)
    return ResourceNotFound(f'Could not find endpoint configuration "{arn}".')


def model_not_found(settings: Settings, name: str) -> ResourceNotFound:
    return ResourceNotFound(f'Could not find model "{settings.arn("model", name)}".')


def endpoint(registry: Registry, settings: Settings, name: str) -> EndpointRecord:
    record = registry.get_endpoint(name)
    if record is None:
        raise endpoint_not_found(settings, name)
    return record


def config_variants(config: EndpointConfigRecord) -> list[sm.ProductionVariant]:
    return sm.CreateEndpointConfigInput.from_wire(config.spec).ProductionVariants


def config_and_models(
    registry: Registry, settings: Settings, config_name: str
) -> tuple[EndpointConfigRecord, dict[str, ModelRecord]]:
    """The config a request names and every model its variants name, or the first not found."""
    config = registry.get_endpoint_config(config_name)
    if config is None:
        raise config_not_found(settings, config_name)
    models: dict[str, ModelRecord] = {}
    for variant in config_variants(config):
        name = variant.ModelName
        if name is None or name in models:
            continue
        model = registry.get_model(name)
        if model is None:
            raise model_not_found(settings, name)
        models[name] = model
    return config, models


def snapshot(config: EndpointConfigRecord, models: dict[str, ModelRecord]) -> dict[str, Any]:
    """The config as deployed, with its models: kept on the endpoint (records.EndpointRecord)."""
    return {"EndpointConfig": config.spec, "Models": {n: m.spec for n, m in models.items()}}


# --- rules (pure) ----------------------------------------------------------------------------


def check_status(record: EndpointRecord, allowed: Collection[EndpointStatus]) -> None:
    """SEMANTICS.md section 2: the messages for an endpoint that cannot take this operation."""
    if record.status in allowed:
        return
    if record.status in IN_PROGRESS or record.current_deployment_id is not None:
        raise ResourceInUse(messages.in_progress_endpoint(record.arn))
    if record.status == EndpointStatus.FAILED:
        raise ValidationError(messages.failed_endpoint(record.arn))
    raise ValidationError(
        f'Cannot update endpoint "{record.arn}" in status {record.status.value}; '
        "only UpdateEndpoint or DeleteEndpoint can change it now."
    )


def check_taken(
    record: EndpointRecord, allowed: Collection[EndpointStatus], deployment_id: str | None
) -> None:
    """The status rules, unless the endpoint is already held by this very deployment (the API
    took it before starting the workflow, or a first attempt of the prepare did)."""
    if deployment_id is not None and record.current_deployment_id == deployment_id:
        return
    check_status(record, allowed)


def check_not_existing(settings: Settings, existing: EndpointRecord | None, name: str) -> None:
    if existing is not None:
        arn = settings.arn("endpoint", name)
        raise ResourceInUse(f'Cannot create already existing endpoint "{arn}".')


def check_update_request(inp: sm.UpdateEndpointInput, record: EndpointRecord) -> None:
    """DeploymentConfig or RetainDeploymentConfig, and the same-config rule (our rule)."""
    if inp.DeploymentConfig is not None and inp.RetainDeploymentConfig:
        raise ValidationError(
            "Give either DeploymentConfig or RetainDeploymentConfig=true, not both: "
            "RetainDeploymentConfig reuses the endpoint's LastDeploymentConfig."
        )
    if inp.EndpointConfigName.lower() == record.config_name.lower():
        raise ValidationError(messages.config_already_deployed(record.arn, record.config_name))


def check_weights_request(
    record: EndpointRecord, inp: sm.UpdateEndpointWeightsAndCapacitiesInput
) -> None:
    """SEMANTICS.md 5: unknown or repeated variant names, and entries that change nothing."""
    names = [d.VariantName for d in inp.DesiredWeightsAndCapacities]
    dupes = sorted(n for n, c in Counter(names).items() if c > 1)
    if dupes:
        raise ValidationError(
            "The variant name(s) "
            + ", ".join(f'"{n}"' for n in dupes)
            + " appear more than once in DesiredWeightsAndCapacities."
        )
    known = {v.variant for v in record.variants}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValidationError(
            "The variant name(s) "
            + ", ".join(f'"{n}"' for n in unknown)
            + f' are not present in endpoint "{record.arn}".'
        )
    for d in inp.DesiredWeightsAndCapacities:
        if d.DesiredWeight is None and d.DesiredInstanceCount is None:
            raise ValidationError(
                f"Variant {d.VariantName}: give DesiredWeight, DesiredInstanceCount or both."
            )


def alarm_names(dc: sm.DeploymentConfig | None) -> list[str]:
    if dc is None or dc.AutoRollbackConfiguration is None:
        return []
    return [a.AlarmName for a in dc.AutoRollbackConfiguration.Alarms or [] if a.AlarmName]


def check_alarms(alarms: AlarmSource | None, names: list[str]) -> None:
    """Our rule: an alarm named for auto-rollback must exist when the request arrives (None:
    alarm names are not checked, an API run without a CloudWatch store)."""
    if not names or alarms is None:
        return
    states = alarms.states(names)
    missing = [n for n in names if n not in states]
    if missing:
        raise ValidationError(
            "The alarm(s) " + ", ".join(f'"{n}"' for n in missing) + " named in "
            "DeploymentConfig.AutoRollbackConfiguration do not exist; create them with "
            "PutMetricAlarm first."
        )


# --- records -> planner ----------------------------------------------------------------------


def _variants(spec: dict[str, Any]) -> list[sm.ProductionVariant]:
    return [sm.ProductionVariant.model_validate(v) for v in spec.get("ProductionVariants", [])]


def serving_specs(record: EndpointRecord) -> list[VariantSpec]:
    """The blue side: the deployed config's variants (from the endpoint's snapshot) at their
    current desired counts and weights (what the planner calls `current`)."""
    config = (record.config_snapshot or {}).get("EndpointConfig") or {}
    specs = {s.variant: s for s in variants_from_config(_variants(config))}
    out: list[VariantSpec] = []
    for state in record.variants:
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


def _now(record: EndpointRecord) -> int:
    return sum(v.current_instance_count for v in record.variants)


def plan_create(
    request: sm.CreateEndpointInput,
    config: EndpointConfigRecord,
    models: dict[str, ModelRecord],
) -> Planned:
    plan = planner.plan_create(variants_from_config(_variants(config.spec), models))
    ask = InstanceAsk("CreateEndpoint", request.EndpointName, plan.peak_instances, 0, "create")
    return Planned(plan, ask)


def _rolling_alternative(record: EndpointRecord, plan: Plan) -> int | None:
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
        sm.DeploymentConfig.model_validate(record.last_deployment_config)
        if record.last_deployment_config
        else None
    )
    new = variants_from_config(_variants(config.spec), models)
    plan = planner.plan_update(serving_specs(record), new, request, last)
    strategy = "rolling" if plan.strategy == Strategy.ROLLING else "blue/green"
    ask = InstanceAsk(
        "UpdateEndpoint",
        record.name,
        plan.peak_instances,
        _now(record),
        strategy,
        _rolling_alternative(record, plan),
    )
    return Planned(plan, ask)


def plan_weights(
    record: EndpointRecord, request: sm.UpdateEndpointWeightsAndCapacitiesInput
) -> Planned:
    if not record.variants:
        raise ValidationError(f'Endpoint "{record.arn}" has no serving variants to change.')
    plan = planner.plan_weights(serving_specs(record), request.DesiredWeightsAndCapacities)
    ask = InstanceAsk(
        "UpdateEndpointWeightsAndCapacities",
        record.name,
        plan.peak_instances,
        _now(record),
        "in place",
    )
    return Planned(plan, ask)


# --- the admissions, as both doors run them --------------------------------------------------


def check_capacity(registry: Registry, settings: Settings, ask: InstanceAsk) -> None:
    check_instances(settings, ask, registry.count_instances())


def validate_update(
    registry: Registry,
    settings: Settings,
    alarms: AlarmSource | None,
    inp: sm.UpdateEndpointInput,
    record: EndpointRecord,
) -> Admitted:
    """Everything UpdateEndpoint checks apart from status and quotas (PlanDeployment shows
    those beside the plan instead of refusing)."""
    check_update_request(inp, record)
    config, models = config_and_models(registry, settings, inp.EndpointConfigName)
    planned = plan_update(record, inp, config, models)
    check_alarms(alarms, list(planned.plan.alarms))
    return Admitted(config, models, planned)


def admit_update(
    registry: Registry,
    settings: Settings,
    alarms: AlarmSource | None,
    inp: sm.UpdateEndpointInput,
    deployment_id: str | None = None,
) -> tuple[EndpointRecord, Admitted]:
    """UpdateEndpoint: the endpoint, its status, the request's rules, the plan, the quotas.
    `deployment_id`: the deployment that may already hold the endpoint (the workflow's)."""
    record = endpoint(registry, settings, inp.EndpointName)
    check_taken(record, UPDATABLE, deployment_id)
    admitted = validate_update(registry, settings, alarms, inp, record)
    check_capacity(registry, settings, admitted.planned.ask)
    return record, admitted


def admit_create(
    registry: Registry,
    settings: Settings,
    alarms: AlarmSource | None,
    inp: sm.CreateEndpointInput,
    existing: EndpointRecord | None,
) -> tuple[EndpointConfigRecord, dict[str, ModelRecord], Planned]:
    """CreateEndpoint after the existence rule: config, models, alarms, plan, quotas.
    `existing`: the record this deployment already made (it counts among the endpoints but is
    not one more)."""
    config, models = config_and_models(registry, settings, inp.EndpointConfigName)
    check_alarms(alarms, alarm_names(inp.DeploymentConfig))
    planned = plan_create(inp, config, models)
    check_endpoints(settings, registry.count_endpoints() - (1 if existing is not None else 0))
    check_capacity(registry, settings, planned.ask)
    return config, models, planned


def admit_weights(
    registry: Registry,
    settings: Settings,
    inp: sm.UpdateEndpointWeightsAndCapacitiesInput,
    deployment_id: str | None = None,
) -> tuple[EndpointRecord, Planned]:
    """UpdateEndpointWeightsAndCapacities: the endpoint, its status, the names, plan, quotas."""
    record = endpoint(registry, settings, inp.EndpointName)
    check_taken(record, REWEIGHTABLE, deployment_id)
    check_weights_request(record, inp)
    planned = plan_weights(record, inp)
    check_capacity(registry, settings, planned.ask)
    return record, planned


def admit_delete(
    registry: Registry, settings: Settings, name: str, deployment_id: str | None = None
) -> EndpointRecord:
    record = endpoint(registry, settings, name)
    check_taken(record, DELETABLE, deployment_id)
    return record
