"""Endpoints: create, compare-and-set operations, revisions, release, delete."""

from __future__ import annotations

import pytest

from greenshift.errors import ConflictError, ResourceInUse, ResourceNotFound
from greenshift.registry.records import EndpointRouting, PendingDeployment, PendingVariant
from greenshift.registry.sql import SqlRegistry
from greenshift.status import DeploymentOutcome, EndpointStatus
from tests.registry_records import at, deployment, endpoint, event, variant

ARN = "arn:aws:sagemaker:us-east-1:000000000000:endpoint/myep"
UPDATE_FROM = [EndpointStatus.IN_SERVICE, EndpointStatus.UPDATE_ROLLBACK_FAILED]


def in_service(registry: SqlRegistry, name: str = "MyEp") -> None:
    registry.create_endpoint(endpoint(name), deployment("create", name, "CreateEndpoint"))
    registry.finish_operation(
        name, "create", status=EndpointStatus.IN_SERVICE, outcome=DeploymentOutcome.SUCCEEDED
    )


def test_create_holds_the_endpoint_and_records_the_deployment(registry: SqlRegistry) -> None:
    registry.create_endpoint(endpoint("MyEp"), deployment("d1", "MyEp", "CreateEndpoint"))
    got = registry.get_endpoint("myep")
    assert got is not None
    assert (got.name, got.status, got.current_deployment_id) == ("MyEp", "Creating", "d1")
    assert got.variants == [variant()]
    stored = registry.get_deployment("d1")
    assert stored is not None and stored.outcome is DeploymentOutcome.RUNNING
    # A retried create with the same deployment is a no-op.
    registry.create_endpoint(endpoint("MyEp"), deployment("d1", "MyEp", "CreateEndpoint"))


def test_create_refuses_a_taken_name_even_while_deleting(registry: SqlRegistry) -> None:
    in_service(registry)
    registry.begin_operation(
        "MYEP", [EndpointStatus.IN_SERVICE], EndpointStatus.DELETING, deployment("del", "MyEp")
    )
    with pytest.raises(ResourceInUse) as err:
        registry.create_endpoint(endpoint("myep"), deployment("d2", "myep"))
    assert err.value.message == f'Cannot create already existing endpoint "{ARN}".'


def test_begin_operation_on_missing_endpoint(registry: SqlRegistry) -> None:
    with pytest.raises(ResourceNotFound) as err:
        registry.begin_operation(
            "MyEp", UPDATE_FROM, EndpointStatus.UPDATING, deployment("d1", "MyEp")
        )
    assert err.value.message == f'Could not find endpoint "{ARN}".'


def test_begin_operation_takes_the_endpoint_once(registry: SqlRegistry) -> None:
    in_service(registry)
    got = registry.begin_operation(
        "myep", UPDATE_FROM, EndpointStatus.UPDATING, deployment("d1", "MyEp")
    )
    assert (got.status, got.current_deployment_id) == ("Updating", "d1")
    assert registry.get_endpoint("MyEp") == got
    # Idempotent for the same deployment: a retried activity gets the record back.
    assert (
        registry.begin_operation(
            "MyEp", UPDATE_FROM, EndpointStatus.UPDATING, deployment("d1", "MyEp")
        )
        == got
    )
    with pytest.raises(ResourceInUse) as err:
        registry.begin_operation(
            "MyEp", UPDATE_FROM, EndpointStatus.UPDATING, deployment("d2", "MyEp")
        )
    assert err.value.message == f'Cannot update in-progress endpoint "{ARN}".'
    assert registry.get_deployment("d2") is None


def test_begin_operation_refuses_failed_endpoints_with_the_aws_message(
    registry: SqlRegistry,
) -> None:
    registry.create_endpoint(endpoint("MyEp"), deployment("d1", "MyEp", "CreateEndpoint"))
    registry.finish_operation(
        "MyEp",
        "d1",
        status=EndpointStatus.FAILED,
        outcome=DeploymentOutcome.FAILED,
        failure_reason="ping failed",
    )
    with pytest.raises(ResourceInUse) as err:
        registry.begin_operation(
            "MyEp", UPDATE_FROM, EndpointStatus.UPDATING, deployment("d2", "MyEp")
        )
    assert err.value.message == (
        f'Cannot update failed endpoint "{ARN}". Delete it and create it again.'
    )
    # DeleteEndpoint accepts Failed.
    got = registry.begin_operation(
        "MyEp",
        [EndpointStatus.FAILED, EndpointStatus.IN_SERVICE],
        EndpointStatus.DELETING,
        deployment("d3", "MyEp", "DeleteEndpoint"),
    )
    assert got.status is EndpointStatus.DELETING


def test_begin_operation_names_a_disallowed_settled_status(registry: SqlRegistry) -> None:
    in_service(registry)
    with pytest.raises(ResourceInUse) as err:
        registry.begin_operation(
            "MyEp",
            [EndpointStatus.UPDATE_ROLLBACK_FAILED],
            EndpointStatus.UPDATING,
            deployment("d1", "MyEp"),
        )
    assert "InService" in err.value.message and "UpdateRollbackFailed" in err.value.message


def test_a_finished_deployment_cannot_take_the_endpoint_again(registry: SqlRegistry) -> None:
    in_service(registry)
    with pytest.raises(ConflictError):
        registry.begin_operation(
            "MyEp", UPDATE_FROM, EndpointStatus.UPDATING, deployment("create", "MyEp")
        )


def test_save_endpoint_is_compare_and_set_on_revision(registry: SqlRegistry) -> None:
    in_service(registry)
    first = registry.get_endpoint("MyEp")
    assert first is not None
    saved = registry.save_endpoint(first.model_copy(update={"variants": [variant(count=5)]}))
    assert saved.revision == first.revision + 1
    assert registry.get_endpoint("MyEp") == saved
    with pytest.raises(ConflictError):
        registry.save_endpoint(first.model_copy(update={"failure_reason": "stale"}))
    stored = registry.get_endpoint("MyEp")
    assert stored is not None and stored.failure_reason is None


def test_status_and_progress_need_the_holding_deployment(registry: SqlRegistry) -> None:
    in_service(registry)
    registry.begin_operation("MyEp", UPDATE_FROM, EndpointStatus.UPDATING, deployment("d1", "MyEp"))
    pending = PendingDeployment(
        config_name="c2",
        start_time=at(1),
        variants=[
            PendingVariant(
                variant="A",
                model_name="m",
                instance_type="ml.m5.large",
                current_weight=0,
                desired_weight=1,
                current_instance_count=0,
                desired_instance_count=2,
            )
        ],
        phase="Provisioning",
        bake_ends_at=at(60),
        alarm_states={"a": "OK"},
    )
    registry.set_progress("MyEp", "d1", pending)
    got = registry.get_endpoint("MyEp")
    assert got is not None and got.pending == pending
    got = registry.set_status("MyEp", "d1", EndpointStatus.ROLLING_BACK, "alarm a in ALARM")
    assert (got.status, got.failure_reason) == ("RollingBack", "alarm a in ALARM")
    assert registry.get_endpoint("MyEp") == got
    with pytest.raises(ConflictError):
        registry.set_status("MyEp", "other", EndpointStatus.IN_SERVICE)
    with pytest.raises(ConflictError):
        registry.set_progress("MyEp", "other", None)
    with pytest.raises(ResourceNotFound):
        registry.set_status("nope", "d1", EndpointStatus.IN_SERVICE)


def _pending(phase: str) -> PendingDeployment:
    return PendingDeployment(config_name="c2", start_time=at(1), variants=[], phase=phase)


def test_record_progress_writes_progress_and_event_once(registry: SqlRegistry) -> None:
    in_service(registry)
    registry.begin_operation("MyEp", UPDATE_FROM, EndpointStatus.UPDATING, deployment("d1", "MyEp"))
    before = registry.get_endpoint("MyEp")
    assert before is not None
    registry.record_progress("myep", "d1", _pending("Baking"), event("d1", key="d1:s0"))
    after = registry.get_endpoint("MyEp")
    assert after is not None and after.pending == _pending("Baking")
    assert after.revision == before.revision + 1
    # A retried activity: the same progress and event key write nothing.
    registry.record_progress("MyEp", "d1", _pending("Baking"), event("d1", key="d1:s0", n=9))
    again = registry.get_endpoint("MyEp")
    assert again is not None and again.revision == after.revision
    assert [e.message for e in registry.list_events("d1")] == ["event 0"]
    # The same progress with a new event: only the event is written.
    registry.record_progress("MyEp", "d1", _pending("Baking"), event("d1", key="d1:s1", n=1))
    last = registry.get_endpoint("MyEp")
    assert last is not None and last.revision == after.revision
    assert [e.message for e in registry.list_events("d1")] == ["event 0", "event 1"]


def test_record_progress_of_another_deployment_writes_nothing(registry: SqlRegistry) -> None:
    in_service(registry)
    registry.begin_operation("MyEp", UPDATE_FROM, EndpointStatus.UPDATING, deployment("d1", "MyEp"))
    with pytest.raises(ConflictError, match="held by d1, not by deployment d2"):
        registry.record_progress("MyEp", "d2", _pending("Baking"), event("d2", key="d2:s0"))
    got = registry.get_endpoint("MyEp")
    assert got is not None and got.pending is None
    assert registry.list_events("d2") == []
    with pytest.raises(ResourceNotFound):
        registry.record_progress("nope", "d1", None, event("d1", key="d1:x"))


def test_finish_operation_releases_once_and_is_idempotent(registry: SqlRegistry) -> None:
    in_service(registry)
    registry.begin_operation("MyEp", UPDATE_FROM, EndpointStatus.UPDATING, deployment("d1", "MyEp"))
    done = registry.finish_operation(
        "MyEp",
        "d1",
        status=EndpointStatus.IN_SERVICE,
        outcome=DeploymentOutcome.SUCCEEDED,
        config_name="c2",
        config_snapshot={"EndpointConfig": {"EndpointConfigName": "c2"}},
        variants=[variant(count=3)],
        last_deployment_config={"BlueGreenUpdatePolicy": {}},
    )
    assert (done.status, done.config_name, done.current_deployment_id) == ("InService", "c2", None)
    assert done.pending is None and done.variants == [variant(count=3)]
    assert done.last_deployment_config == {"BlueGreenUpdatePolicy": {}}
    dep = registry.get_deployment("d1")
    assert dep is not None and dep.outcome is DeploymentOutcome.SUCCEEDED and dep.ended_at
    again = registry.finish_operation(
        "MyEp", "d1", status=EndpointStatus.FAILED, outcome=DeploymentOutcome.FAILED
    )
    assert again == done  # the retry changed nothing
    # A deployment that never held the endpoint cannot release it.
    registry.begin_operation("MyEp", UPDATE_FROM, EndpointStatus.UPDATING, deployment("d2", "MyEp"))
    with pytest.raises(ConflictError):
        registry.finish_operation(
            "MyEp", "zzz", status=EndpointStatus.IN_SERVICE, outcome=DeploymentOutcome.SUCCEEDED
        )


def test_rollback_keeps_the_old_config_and_records_why(registry: SqlRegistry) -> None:
    in_service(registry)
    registry.begin_operation("MyEp", UPDATE_FROM, EndpointStatus.UPDATING, deployment("d1", "MyEp"))
    done = registry.finish_operation(
        "MyEp",
        "d1",
        status=EndpointStatus.IN_SERVICE,
        outcome=DeploymentOutcome.ROLLED_BACK,
        failure_reason="Alarm x fired",
        last_deployment_config={"x": 1},
    )
    assert (done.config_name, done.failure_reason) == ("c", "Alarm x fired")
    dep = registry.get_deployment("d1")
    assert dep is not None and dep.outcome is DeploymentOutcome.ROLLED_BACK
    assert dep.failure_reason == "Alarm x fired"


def test_delete_endpoint_record_removes_it_and_its_routing(registry: SqlRegistry) -> None:
    in_service(registry)
    registry.set_routing(EndpointRouting(endpoint="MyEp"))
    registry.begin_operation(
        "MyEp", UPDATE_FROM, EndpointStatus.DELETING, deployment("del", "MyEp", "DeleteEndpoint")
    )
    with pytest.raises(ConflictError):
        registry.delete_endpoint_record("MyEp", "someone-else")
    assert registry.delete_endpoint_record("myep", "del") is True
    assert registry.get_endpoint("MyEp") is None
    assert registry.get_routing("MyEp") is None
    dep = registry.get_deployment("del")
    assert dep is not None and dep.outcome is DeploymentOutcome.SUCCEEDED
    assert registry.delete_endpoint_record("MyEp", "del") is False
    # The name is free again.
    registry.create_endpoint(endpoint("MYEP"), deployment("again", "MYEP", "CreateEndpoint"))
