"""Models and endpoint configs: CRUD, case-insensitive names, SEMANTICS.md messages, paging."""

from __future__ import annotations

import pytest

from greenshift.errors import ResourceInUse, ValidationError
from greenshift.registry.api import ListQuery
from greenshift.registry.sql import SqlRegistry
from greenshift.status import DeploymentOutcome, EndpointStatus
from tests.registry_records import at, config, deployment, endpoint, model


def test_model_round_trip_keeps_case_and_spec(registry: SqlRegistry) -> None:
    registry.create_model(model("MyModel", created=at(5)))
    got = registry.get_model("mymodel")
    assert got == model("MyModel", created=at(5))
    assert got is not None and got.name == "MyModel"
    assert got.created_at.tzinfo is not None


def test_names_are_unique_case_insensitively(registry: SqlRegistry) -> None:
    registry.create_model(model("MyModel"))
    with pytest.raises(ResourceInUse) as err:
        registry.create_model(model("MYMODEL"))
    assert err.value.message == (
        'Cannot create already existing model "arn:aws:sagemaker:us-east-1:000000000000:'
        'model/mymodel".'
    )
    registry.create_endpoint_config(config("Cfg"))
    with pytest.raises(ResourceInUse) as err:
        registry.create_endpoint_config(config("cfg"))
    assert err.value.message == (
        "Cannot create already existing endpoint configuration "
        '"arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/cfg".'
    )


def test_delete_reports_whether_it_deleted(registry: SqlRegistry) -> None:
    registry.create_endpoint_config(config("Cfg"))
    assert registry.delete_endpoint_config("CFG") is True
    assert registry.get_endpoint_config("Cfg") is None
    assert registry.delete_endpoint_config("Cfg") is False
    assert registry.delete_model("nothing") is False


def test_list_pages_with_opaque_token(registry: SqlRegistry) -> None:
    for i in range(7):
        registry.create_model(model(f"m{i}", created=at(i)))
    seen: list[str] = []
    token = None
    for _ in range(10):  # bounded: 7 items in pages of 3 need 3 pages
        page = registry.list_models(
            ListQuery(max_results=3, next_token=token, sort_by="Name", sort_order="Ascending")
        )
        seen += [m.name for m in page.items]
        token = page.next_token
        if token is None:
            break
    assert seen == [f"m{i}" for i in range(7)]


def test_list_filters_and_sorts(registry: SqlRegistry) -> None:
    for i, name in enumerate(["alpha", "Beta", "alphabet", "gamma"]):
        registry.create_endpoint_config(config(name, created=at(i * 10)))
    names = lambda q: [c.name for c in registry.list_endpoint_configs(q).items]  # noqa: E731
    assert names(ListQuery(name_contains="ALPHA", sort_by="Name", sort_order="Ascending")) == [
        "alpha",
        "alphabet",
    ]
    assert names(ListQuery()) == ["gamma", "alphabet", "Beta", "alpha"]  # newest first
    assert names(
        ListQuery(creation_time_after=at(0), creation_time_before=at(30), sort_order="Ascending")
    ) == ["Beta", "alphabet"]
    assert names(ListQuery(name_contains="%")) == []  # LIKE wildcards are literal


def test_list_endpoints_filters_on_status_and_last_modified(registry: SqlRegistry) -> None:
    registry.create_endpoint(endpoint("e1", created=at(0)), deployment("d1", "e1"))
    registry.create_endpoint(endpoint("e2", created=at(10)), deployment("d2", "e2"))
    registry.finish_operation(
        "e2", "d2", status=EndpointStatus.IN_SERVICE, outcome=DeploymentOutcome.SUCCEEDED
    )
    page = registry.list_endpoints(ListQuery(status_equals="InService"))
    assert [e.name for e in page.items] == ["e2"]
    page = registry.list_endpoints(ListQuery(last_modified_time_before=at(5)))
    assert [e.name for e in page.items] == ["e1"]
    page = registry.list_endpoints(ListQuery(sort_by="Status", sort_order="Ascending"))
    assert [e.name for e in page.items] == ["e1", "e2"]  # Creating < InService
    assert registry.count_endpoints() == 2


def test_bad_token_and_sort_are_validation_errors(registry: SqlRegistry) -> None:
    with pytest.raises(ValidationError):
        registry.list_models(ListQuery(next_token="not-a-token!"))
    with pytest.raises(ValidationError):
        registry.list_models(ListQuery(sort_by="Status"))


def test_endpoints_using_config_counts_serving_and_in_flight(registry: SqlRegistry) -> None:
    registry.create_endpoint(endpoint("Serving"), deployment("d1", "Serving"))
    registry.finish_operation(
        "Serving", "d1", status=EndpointStatus.IN_SERVICE, outcome=DeploymentOutcome.SUCCEEDED
    )
    registry.create_endpoint(endpoint("Moving"), deployment("d2", "Moving"))
    registry.finish_operation(
        "Moving", "d2", status=EndpointStatus.IN_SERVICE, outcome=DeploymentOutcome.SUCCEEDED
    )
    registry.begin_operation(
        "Moving",
        [EndpointStatus.IN_SERVICE],
        EndpointStatus.UPDATING,
        deployment("d3", "Moving", to_config="NewCfg", from_config="c"),
    )
    assert registry.endpoints_using_config("C") == ["Moving", "Serving"]
    assert registry.endpoints_using_config("newcfg") == ["Moving"]
    assert registry.endpoints_using_config("other") == []
    registry.finish_operation(
        "Moving", "d3", status=EndpointStatus.IN_SERVICE, outcome=DeploymentOutcome.ROLLED_BACK
    )
    assert registry.endpoints_using_config("NewCfg") == []
