"""The API's quotas, enforced again where a deployment really starts: the prepare activities.

Temporal is a documented entry point (`temporal workflow start --type UpdateEndpoint ...`): a
workflow started there never met the API, so its quotas (max_instances, max_endpoints,
max_instances_per_endpoint) and with them the bounds on instance counts must hold here too
(issue 14 item 1: five instances against a limit of three, a count of 2**64, went through).
The same functions as the API's, over the same plan (greenshift.api.plans and .limits), so the
two doors give the same answer and the same message. For a request the API already let in, the
check runs again on the registry as it is now: a race with another deployment is caught too.
"""

from __future__ import annotations

from greenshift.api.limits import check_endpoints, check_instances
from greenshift.api.plans import plan_create, plan_update, plan_weights
from greenshift.contracts.sagemaker_shapes import (
    CreateEndpointInput,
    UpdateEndpointInput,
    UpdateEndpointWeightsAndCapacitiesInput,
)
from greenshift.registry.api import Registry
from greenshift.registry.records import EndpointConfigRecord, EndpointRecord, ModelRecord
from greenshift.settings import Settings


def check_create(
    registry: Registry,
    settings: Settings,
    request: CreateEndpointInput,
    config: EndpointConfigRecord,
    models: dict[str, ModelRecord],
    existing: EndpointRecord | None,
) -> None:
    """`existing`: the record the API (or a first attempt) already made for this deployment,
    which counts among the endpoints but is not one more."""
    endpoints = registry.count_endpoints() - (1 if existing is not None else 0)
    check_endpoints(settings, endpoints)
    check_instances(settings, plan_create(request, config, models).ask, registry.count_instances())


def check_update(
    registry: Registry,
    settings: Settings,
    endpoint: EndpointRecord,
    request: UpdateEndpointInput,
    config: EndpointConfigRecord,
    models: dict[str, ModelRecord],
) -> None:
    ask = plan_update(endpoint, request, config, models).ask
    check_instances(settings, ask, registry.count_instances())


def check_weights(
    registry: Registry,
    settings: Settings,
    endpoint: EndpointRecord,
    request: UpdateEndpointWeightsAndCapacitiesInput,
) -> None:
    check_instances(settings, plan_weights(endpoint, request).ask, registry.count_instances())
