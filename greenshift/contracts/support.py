"""What Greenshift does with every member of every request it accepts (SEMANTICS.md 8).

botocore's model has far more members than Greenshift builds (data capture, async inference,
serverless, VPCs, ...). A member that is accepted and then ignored lies to the user: a
multi-model request answered by one model, a data capture config that captures nothing. So each
member of each supported operation's input is either

- **honoured**: something Greenshift does with it, shown by the test named in its rule; or
- **refused**: a `ValidationException` naming the member and saying Greenshift does not support
  it (also refused: only some values, e.g. `Mode: MultiModel`, `EnableNetworkIsolation: true`).

`RULES` is keyed by botocore's `Shape.Member`, so a shape used in several places (the
`ContainerDefinition` of `PrimaryContainer` and `Containers[]`) has one rule. Members under a
refused member need no rule: the whole structure is refused. `check_supported` applies the rules
to a request document that already passed its contract; the API and the workflows both call it.
`tests/unit/test_members.py` walks botocore's model and fails when a member has no rule, when a
rule names a member the model no longer has, or when a rule's test does not exist; it also keeps
`docs/members.md` (the table `render_table` writes) in step.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from greenshift.errors import ValidationError

_SAGEMAKER_SHAPES = "greenshift.contracts.sagemaker_shapes"
HONOURED = "honoured"
REFUSED = "refused"


@dataclass(frozen=True)
class Rule:
    """One member's fate. `refuses(value)` is None when the value is honoured, else the reason.

    `test` is the pytest node id (or, for areas built elsewhere, the test file) that shows the
    effect of an honoured member or the refusal of a refused one.
    """

    status: str
    test: str
    note: str = ""
    # For members refused only for some values: the predicate, and what the table says.
    refused_when: Callable[[Any], bool] | None = None
    refused_values: str = ""
    example: Any = None  # a refused value, for the tests

    def refuses(self, value: Any) -> bool:
        if self.status == REFUSED:
            return True
        return self.refused_when is not None and bool(self.refused_when(value))


def honoured(test: str, note: str = "") -> Rule:
    return Rule(HONOURED, test, note)


def refused(note: str, test: str = "") -> Rule:
    return Rule(REFUSED, test or REFUSAL_TEST, note, example={})


def refused_if(
    test: str, values: str, when: Callable[[Any], bool], example: Any, note: str = ""
) -> Rule:
    """Honoured (shown by `test`) except for `values`, which are refused."""
    return Rule(HONOURED, test, note, when, values, example)


# --- the tests the rules name ------------------------------------------------------------------

REFUSAL_TEST = "tests/unit/test_members.py::test_every_refused_member_is_refused_by_name"
API_REFUSALS = "tests/integration/test_api_members.py::test_unsupported_requests_are_refused"
REAL_MODELS = "tests/e2e/test_real_models.py"  # models, environment, timeouts (built elsewhere)
ROUTING = (
    "tests/integration/test_dataplane_routing_strategy.py"
    "::test_least_outstanding_requests_spares_the_slow_instance_random_does_not"
)
CAPTURE_ALL = (
    "tests/integration/test_data_capture.py"
    "::test_every_invocation_at_100_percent_in_sagemakers_format"
)
CAPTURE_SAMPLED = (
    "tests/integration/test_data_capture.py"
    "::test_20_percent_sampling_and_a_canary_tells_the_fleets_apart"
)
CAPTURE_RULES = "tests/unit/test_capture.py::test_rule_from_config_follows_sagemakers_defaults"
DOWNLOAD_TIMEOUT = (
    "tests/integration/test_fleet_agent.py"
    "::test_model_data_slower_than_its_download_timeout_fails_the_launch"
)
CONTAINERS = "tests/e2e/test_containers.py"  # Image as a container, GPUs (built elsewhere)
# Rules may name these files before their tests land; the drift test checks every other name.
ELSEWHERE = (REAL_MODELS, CONTAINERS)

SAGEMAKER_IT = "tests/integration/test_api_sagemaker.py"
MODEL_CRUD = f"{SAGEMAKER_IT}::test_model_create_describe_list_delete"
CONFIG_CRUD = f"{SAGEMAKER_IT}::test_create_starts_the_workflow_and_returns_at_once"
CREATE = f"{SAGEMAKER_IT}::test_create_starts_the_workflow_and_returns_at_once"
UPDATE = f"{SAGEMAKER_IT}::test_update_starts_the_workflow"
DELETE = f"{SAGEMAKER_IT}::test_delete_and_the_endpoint_deleted_waiter"
DELETE_CONFIG = f"{SAGEMAKER_IT}::test_delete_config_in_use_is_accepted_and_loses_nothing"
LIST_ENDPOINTS = f"{SAGEMAKER_IT}::test_list_endpoints_paging_and_filters"
MEMBERS_IT = "tests/integration/test_api_members.py"
ROLE = f"{MEMBERS_IT}::test_execution_role_is_kept_and_described"
ONE_CONTAINER = f"{MEMBERS_IT}::test_one_container_in_containers_is_the_primary"
SERIAL = f"{MEMBERS_IT}::test_serial_inference_execution_of_one_container_is_accepted"
ISOLATION_OFF = f"{MEMBERS_IT}::test_network_isolation_false_is_the_default"
LISTS = f"{MEMBERS_IT}::test_list_members_of_models_and_configs"
LIST_ENDPOINT_TIMES = f"{MEMBERS_IT}::test_list_endpoints_time_filters"
TAGS_CREATE = (
    "tests/integration/test_api_tags.py::test_create_time_tags_are_stored_and_listed_for_each_kind"
)
TAGS_OPS = "tests/integration/test_api_tags.py::test_add_overwrites_list_pages_delete_removes"
TAGS_PAGING = "tests/integration/test_api_tags.py::test_paging_bounds"
PLANNING = "tests/unit/test_planning.py"
CANARY = f"{PLANNING}::test_canary_follows_the_semantics_checklist"
LINEAR = f"{PLANNING}::test_linear_moves_one_step_per_bake"
ALL_AT_ONCE = f"{PLANNING}::test_all_at_once_shifts_everything_then_bakes_once_for_both_waits"
SIZES = f"{PLANNING}::test_percentages_round_up_to_at_least_one_instance"
ROLLING = f"{PLANNING}::test_rolling_replaces_in_batches_within_n_plus_one_batch"
RETAIN_TABLE = f"{PLANNING}::test_retained_properties_table"
RETAIN_DC = f"{PLANNING}::test_retain_deployment_config_reuses_the_last_one"
STRATEGIES = "tests/workflow/test_strategies.py::test_strategy_succeeds"
ROLLBACK = "tests/workflow/test_rollback.py"
DEADLINE = f"{ROLLBACK}::test_deadline_rolls_back_even_when_paused"
ROLLBACK_BATCHES = f"{ROLLBACK}::test_rolling_rollback_moves_back_in_batches"
ALARMS = f"{ROLLBACK}::test_alarm_in_a_bake_rolls_back"
WEIGHTS = "tests/workflow/test_operations.py::test_weights_and_capacities_in_place"
TRAFFIC = "tests/e2e/test_lifecycle.py::test_canary_update_under_traffic_loses_no_request"
SHARES = (
    "tests/unit/test_routing_math.py::test_endpoint_shares_are_weight_over_sum_times_fleet_share"
)


def _is_true(value: Any) -> bool:
    return value is True


# --- the rules ---------------------------------------------------------------------------------

_LIST_MEMBERS = ("SortBy", "SortOrder", "NextToken", "MaxResults", "NameContains")
_DEPLOYMENT = {
    "DeploymentConfig.BlueGreenUpdatePolicy": honoured(STRATEGIES),
    "DeploymentConfig.RollingUpdatePolicy": honoured(ROLLING),
    "DeploymentConfig.AutoRollbackConfiguration": honoured(ALARMS),
    "BlueGreenUpdatePolicy.TrafficRoutingConfiguration": honoured(CANARY),
    "BlueGreenUpdatePolicy.TerminationWaitInSeconds": honoured(ALL_AT_ONCE),
    "BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds": honoured(DEADLINE),
    "TrafficRoutingConfig.Type": honoured(STRATEGIES),
    "TrafficRoutingConfig.WaitIntervalInSeconds": honoured(CANARY),
    "TrafficRoutingConfig.CanarySize": honoured(CANARY),
    "TrafficRoutingConfig.LinearStepSize": honoured(LINEAR),
    "CapacitySize.Type": honoured(SIZES),
    "CapacitySize.Value": honoured(SIZES),
    "RollingUpdatePolicy.MaximumBatchSize": honoured(ROLLING),
    "RollingUpdatePolicy.WaitIntervalInSeconds": honoured(ROLLING),
    "RollingUpdatePolicy.MaximumExecutionTimeoutInSeconds": honoured(DEADLINE),
    "RollingUpdatePolicy.RollbackMaximumBatchSize": honoured(ROLLBACK_BATCHES),
    "AutoRollbackConfig.Alarms": honoured(ALARMS),
    "Alarm.AlarmName": honoured(ALARMS),
}

RULES: Mapping[str, Rule] = {
    # CreateModel
    "CreateModelInput.ModelName": honoured(MODEL_CRUD),
    "CreateModelInput.PrimaryContainer": honoured(REAL_MODELS),
    "CreateModelInput.Containers": refused_if(
        ONE_CONTAINER,
        "more than one container in Containers",
        lambda v: isinstance(v, list) and len(v) > 1,
        [{}, {}],
        "one container is the model's container, as PrimaryContainer; inference pipelines are "
        "not built",
    ),
    "CreateModelInput.InferenceExecutionConfig": honoured(SERIAL),
    "InferenceExecutionConfig.Mode": refused_if(
        SERIAL,
        "InferenceExecutionConfig Mode Direct",
        lambda v: v == "Direct",
        "Direct",
        "one container runs; Direct invocation of a container by hostname is not built",
    ),
    "CreateModelInput.ExecutionRoleArn": honoured(
        ROLE, "kept and described; Greenshift has no IAM, the model runs with no role"
    ),
    "CreateModelInput.Tags": honoured(TAGS_CREATE),
    "Tag.Key": honoured(TAGS_CREATE),
    "Tag.Value": honoured(TAGS_CREATE),
    "CreateModelInput.VpcConfig": refused("VPCs are not built: instances run on this host"),
    "CreateModelInput.EnableNetworkIsolation": refused_if(
        ISOLATION_OFF,
        "EnableNetworkIsolation true",
        _is_true,
        True,
        "network isolation of model instances is not built",
    ),
    "ContainerDefinition.ContainerHostname": refused(
        "container hostnames address the containers of a pipeline, which is not built"
    ),
    "ContainerDefinition.Image": honoured(CONTAINERS, "built-in images or a Docker container"),
    "ContainerDefinition.ImageConfig": refused(
        "private registries are not built: images are the engine's"
    ),
    "ContainerDefinition.Mode": refused_if(
        REFUSAL_TEST,
        "Mode MultiModel",
        lambda v: v == "MultiModel",
        "MultiModel",
        "multi-model endpoints are not built; SingleModel is what every instance serves",
    ),
    "ContainerDefinition.ModelDataUrl": honoured(REAL_MODELS),
    "ContainerDefinition.ModelDataSource": honoured(REAL_MODELS),
    "ModelDataSource.S3DataSource": honoured(REAL_MODELS),
    "S3ModelDataSource.S3Uri": honoured(REAL_MODELS),
    "S3ModelDataSource.S3DataType": honoured(REAL_MODELS),
    "S3ModelDataSource.CompressionType": honoured(REAL_MODELS),
    "S3ModelDataSource.ModelAccessConfig": refused("gated (EULA) models are not built"),
    "S3ModelDataSource.HubAccessConfig": refused("SageMaker hubs are not built"),
    "S3ModelDataSource.ManifestS3Uri": refused("model manifests are not built"),
    "S3ModelDataSource.ETag": refused("ETag checks of model data are not built"),
    "S3ModelDataSource.ManifestEtag": refused("model manifests are not built"),
    "ContainerDefinition.AdditionalModelDataSources": refused(
        "additional model data channels are not built"
    ),
    "ContainerDefinition.Environment": honoured(REAL_MODELS),
    "ContainerDefinition.ModelPackageName": refused("model packages are not built"),
    "ContainerDefinition.InferenceSpecificationName": refused("model packages are not built"),
    "ContainerDefinition.MultiModelConfig": refused("multi-model endpoints are not built"),
    # DescribeModel, DeleteModel, ListModels
    "DescribeModelInput.ModelName": honoured(MODEL_CRUD),
    "DeleteModelInput.ModelName": honoured(MODEL_CRUD),
    **{f"ListModelsInput.{m}": honoured(LISTS) for m in _LIST_MEMBERS},
    "ListModelsInput.CreationTimeBefore": honoured(LISTS),
    "ListModelsInput.CreationTimeAfter": honoured(LISTS),
    # CreateEndpointConfig
    "CreateEndpointConfigInput.EndpointConfigName": honoured(CONFIG_CRUD),
    "CreateEndpointConfigInput.ProductionVariants": honoured(TRAFFIC),
    "CreateEndpointConfigInput.Tags": honoured(TAGS_CREATE),
    "CreateEndpointConfigInput.DataCaptureConfig": honoured(CAPTURE_ALL),
    "DataCaptureConfig.EnableCapture": honoured(CAPTURE_SAMPLED),
    "DataCaptureConfig.InitialSamplingPercentage": honoured(CAPTURE_SAMPLED),
    "DataCaptureConfig.DestinationS3Uri": honoured(CAPTURE_ALL),
    "DataCaptureConfig.KmsKeyId": refused("KMS encryption of captured data is not built"),
    "DataCaptureConfig.CaptureOptions": honoured(CAPTURE_RULES),
    "CaptureOption.CaptureMode": honoured(CAPTURE_RULES),
    "DataCaptureConfig.CaptureContentTypeHeader": honoured(CAPTURE_RULES),
    "CaptureContentTypeHeader.CsvContentTypes": honoured(CAPTURE_RULES),
    "CaptureContentTypeHeader.JsonContentTypes": honoured(CAPTURE_RULES),
    "CreateEndpointConfigInput.KmsKeyId": refused(
        "KMS encryption of instance storage is not built"
    ),
    "CreateEndpointConfigInput.AsyncInferenceConfig": refused(
        "asynchronous inference is not built"
    ),
    "CreateEndpointConfigInput.ExplainerConfig": refused(
        "SageMaker Clarify explainers are not built"
    ),
    "CreateEndpointConfigInput.ShadowProductionVariants": refused("shadow variants are not built"),
    "CreateEndpointConfigInput.ExecutionRoleArn": refused(
        "endpoint config roles serve features that are not built (inference components)"
    ),
    "CreateEndpointConfigInput.VpcConfig": refused(
        "VPCs are not built: instances run on this host"
    ),
    "CreateEndpointConfigInput.EnableNetworkIsolation": refused_if(
        ISOLATION_OFF,
        "EnableNetworkIsolation true",
        _is_true,
        True,
        "network isolation of model instances is not built",
    ),
    "CreateEndpointConfigInput.MetricsConfig": refused(
        "enhanced metrics are not built; the standard AWS/SageMaker metrics always are"
    ),
    "ProductionVariant.VariantName": honoured(TRAFFIC),
    "ProductionVariant.ModelName": honoured(TRAFFIC),
    "ProductionVariant.InitialInstanceCount": honoured(TRAFFIC),
    "ProductionVariant.InstanceType": honoured(CONTAINERS, "GPU types get GPUs"),
    "ProductionVariant.InitialVariantWeight": honoured(SHARES),
    "ProductionVariant.ModelDataDownloadTimeoutInSeconds": honoured(DOWNLOAD_TIMEOUT),
    "ProductionVariant.ContainerStartupHealthCheckTimeoutInSeconds": honoured(REAL_MODELS),
    "ProductionVariant.InstancePools": refused("instance pools are not built"),
    "ProductionVariant.VariantInstanceProvisionTimeoutInSeconds": refused(
        "the startup limits are ContainerStartupHealthCheckTimeoutInSeconds and "
        "ModelDataDownloadTimeoutInSeconds"
    ),
    "ProductionVariant.AcceleratorType": refused("Elastic Inference accelerators are not built"),
    "ProductionVariant.CoreDumpConfig": refused("core dump upload is not built"),
    "ProductionVariant.ServerlessConfig": refused(
        "serverless variants are not built; give InstanceType and InitialInstanceCount"
    ),
    "ProductionVariant.VolumeSizeInGB": refused("instance volumes are not built"),
    "ProductionVariant.EnableSSMAccess": refused("SSM access to instances is not built"),
    "ProductionVariant.ManagedInstanceScaling": refused("managed instance scaling is not built"),
    "ProductionVariant.RoutingConfig": honoured(ROUTING),
    "ProductionVariantRoutingConfig.RoutingStrategy": honoured(ROUTING),
    "ProductionVariant.InferenceAmiVersion": refused("instance AMIs are not built"),
    "ProductionVariant.CapacityReservationConfig": refused("capacity reservations are not built"),
    # DescribeEndpointConfig, DeleteEndpointConfig, ListEndpointConfigs
    "DescribeEndpointConfigInput.EndpointConfigName": honoured(DELETE_CONFIG),
    "DeleteEndpointConfigInput.EndpointConfigName": honoured(DELETE_CONFIG),
    **{f"ListEndpointConfigsInput.{m}": honoured(LISTS) for m in _LIST_MEMBERS},
    "ListEndpointConfigsInput.CreationTimeBefore": honoured(LISTS),
    "ListEndpointConfigsInput.CreationTimeAfter": honoured(LISTS),
    # CreateEndpoint, DescribeEndpoint, UpdateEndpoint, DeleteEndpoint, ListEndpoints
    "CreateEndpointInput.EndpointName": honoured(CREATE),
    "CreateEndpointInput.EndpointConfigName": honoured(CREATE),
    "CreateEndpointInput.DeploymentConfig": honoured(CREATE, "kept as LastDeploymentConfig"),
    "CreateEndpointInput.Tags": honoured(TAGS_CREATE),
    **_DEPLOYMENT,
    "DescribeEndpointInput.EndpointName": honoured(CREATE),
    "UpdateEndpointInput.EndpointName": honoured(UPDATE),
    "UpdateEndpointInput.EndpointConfigName": honoured(UPDATE),
    "UpdateEndpointInput.RetainAllVariantProperties": honoured(RETAIN_TABLE),
    "UpdateEndpointInput.ExcludeRetainedVariantProperties": honoured(RETAIN_TABLE),
    "VariantProperty.VariantPropertyType": refused_if(
        RETAIN_TABLE,
        "VariantPropertyType DataCaptureConfig",
        lambda v: v == "DataCaptureConfig",
        "DataCaptureConfig",
        "retaining a variant's data capture across updates is not built",
    ),
    "UpdateEndpointInput.DeploymentConfig": honoured(STRATEGIES),
    "UpdateEndpointInput.RetainDeploymentConfig": honoured(RETAIN_DC),
    "DeleteEndpointInput.EndpointName": honoured(DELETE),
    **{f"ListEndpointsInput.{m}": honoured(LIST_ENDPOINTS) for m in _LIST_MEMBERS},
    "ListEndpointsInput.StatusEquals": honoured(LIST_ENDPOINTS),
    "ListEndpointsInput.CreationTimeBefore": honoured(LIST_ENDPOINT_TIMES),
    "ListEndpointsInput.CreationTimeAfter": honoured(LIST_ENDPOINT_TIMES),
    "ListEndpointsInput.LastModifiedTimeBefore": honoured(LIST_ENDPOINT_TIMES),
    "ListEndpointsInput.LastModifiedTimeAfter": honoured(LIST_ENDPOINT_TIMES),
    # UpdateEndpointWeightsAndCapacities
    "UpdateEndpointWeightsAndCapacitiesInput.EndpointName": honoured(WEIGHTS),
    "UpdateEndpointWeightsAndCapacitiesInput.DesiredWeightsAndCapacities": honoured(WEIGHTS),
    "DesiredWeightAndCapacity.VariantName": honoured(WEIGHTS),
    "DesiredWeightAndCapacity.DesiredWeight": honoured(WEIGHTS),
    "DesiredWeightAndCapacity.DesiredInstanceCount": honoured(WEIGHTS),
    "DesiredWeightAndCapacity.ServerlessUpdateConfig": refused("serverless variants are not built"),
    # AddTags, ListTags, DeleteTags
    "AddTagsInput.ResourceArn": honoured(TAGS_OPS),
    "AddTagsInput.Tags": honoured(TAGS_OPS),
    "ListTagsInput.ResourceArn": honoured(TAGS_OPS),
    "ListTagsInput.NextToken": honoured(TAGS_PAGING),
    "ListTagsInput.MaxResults": honoured(TAGS_PAGING),
    "DeleteTagsInput.ResourceArn": honoured(TAGS_OPS),
    "DeleteTagsInput.TagKeys": honoured(TAGS_OPS),
}


# --- applying the rules ------------------------------------------------------------------------


def check_supported(shape_cls: type[BaseModel], document: Any) -> None:
    """Raise ValidationError for the first member of `document` (already valid for `shape_cls`)
    that Greenshift does not support, naming it and where it is. Only botocore's SageMaker shapes
    have rules; Greenshift's own extension shapes are honoured by definition."""
    if shape_cls.__module__ != _SAGEMAKER_SHAPES:
        return
    for path, key, value in _members(shape_cls, document, ""):
        rule = RULES.get(key)
        if rule is None:
            # A member botocore gained after this table was written: not honoured, so refused.
            raise ValidationError(_message(key, path, value, None))
        if rule.refuses(value):
            raise ValidationError(_message(key, path, value, rule))


def _message(key: str, path: str, value: Any, rule: Rule | None) -> str:
    member = key.split(".", 1)[1]
    # Refused for some values only: the rule's phrase says which ("Mode MultiModel").
    what = rule.refused_values if rule is not None and rule.refused_values else member
    why = f": {rule.note}." if rule is not None and rule.note else "."
    return f"Greenshift does not support {what} (at '{path}'){why}"


def _members(
    shape_cls: type[BaseModel], document: Any, path: str
) -> Iterator[tuple[str, str, Any]]:
    """(path, "Shape.Member", value) of every member present in `document`, depth first; members
    under a refused one are not visited (the refusal names the outer member)."""
    if not isinstance(document, Mapping):
        return
    for name, field in shape_cls.model_fields.items():
        value = document.get(name)
        if value is None:
            continue
        key = f"{shape_cls.__name__.rstrip('_')}.{name}"
        where = f"{path}.{name}" if path else name
        yield where, key, value
        rule = RULES.get(key)
        if rule is None or rule.status == REFUSED:
            continue
        yield from _inner(field.annotation, value, where)


def _inner(tp: Any, value: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        yield from _members(tp, value, path)
    elif typing.get_origin(tp) is list and isinstance(value, list):
        item = typing.get_args(tp)[0]
        for i, v in enumerate(value):
            yield from _inner(item, v, f"{path}[{i}]")


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin is typing.Union or origin is types.UnionType:
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


# --- the audit over botocore's model -----------------------------------------------------------


def reachable_members(model: Any, operations: list[str]) -> dict[str, list[str]]:
    """`Shape.Member` -> the operations whose input reaches it, walking botocore's model (a
    `botocore.model.ServiceModel`) and stopping under refused members, in walk order."""
    found: dict[str, list[str]] = {}

    def visit(shape: Any, operation: str, seen: set[str]) -> None:
        if shape.type_name == "list":
            visit(shape.member, operation, seen)
            return
        if shape.type_name != "structure" or shape.name in seen:
            return
        seen = seen | {shape.name}
        for name, member in shape.members.items():
            key = f"{shape.name}.{name}"
            users = found.setdefault(key, [])
            if operation not in users:
                users.append(operation)
            rule = RULES.get(key)
            if rule is not None and rule.status == REFUSED:
                continue
            visit(member, operation, seen)

    for operation in operations:
        visit(model.operation_model(operation).input_shape, operation, set())
    return found


def render_table(model: Any, operations: list[str]) -> str:
    """docs/members.md: every member of every supported operation's input, and its fate."""
    lines = [
        "# Members: honoured or refused",
        "",
        "Every member of the input of every SageMaker operation Greenshift serves, walked from",
        "botocore's model (`greenshift/contracts/support.py` holds the rules; this file is",
        "generated by `python -m greenshift.contracts.support > docs/members.md` and checked",
        "by `tests/unit/test_members.py`, which also fails when botocore gains a member with no",
        "rule).",
        "A **refused** member is a `ValidationException` that names it and says Greenshift does",
        "not support it; members under a refused structure are refused with it. Tests in",
        f"`{REAL_MODELS}` and `{CONTAINERS}` are built in other areas.",
        "",
        "| member | operations | status | shown by | note |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, users in reachable_members(model, operations).items():
        rule = RULES.get(key)
        if rule is None:
            status, test, note = "**no rule**", "", ""
        else:
            status = rule.status
            if rule.refused_when is not None:
                status = f"honoured, but refused: {rule.refused_values}"
            test, note = f"`{rule.test}`", rule.note
        lines.append(f"| `{key}` | {', '.join(users)} | {status} | {test} | {note} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    import botocore.session

    from greenshift.contracts.sagemaker_shapes import OPERATIONS

    service = botocore.session.get_session().get_service_model("sagemaker")
    sys.stdout.write(render_table(service, list(OPERATIONS)))
