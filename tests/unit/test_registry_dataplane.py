"""Fleets, instances, routing and the generation handshake with the router controller; deployments
and their event log."""

from __future__ import annotations

from greenshift.registry.records import EndpointRouting, FleetRoute, VariantRoute
from greenshift.registry.sql import SqlRegistry
from greenshift.status import DeploymentOutcome, EndpointStatus
from tests.registry_records import at, deployment, endpoint, event, fleet, instance
from tests.sql_statements import Statements


def routing(weight: float = 1.0, endpoint: str = "ep") -> EndpointRouting:
    return EndpointRouting(
        endpoint=endpoint,
        variants=[
            VariantRoute(
                variant="A",
                weight=weight,
                fleets=[
                    FleetRoute(fleet_id="blue", share=0.9),
                    FleetRoute(fleet_id="green", share=0.1),
                ],
            )
        ],
    )


def test_set_routing_bumps_version_only_on_change(registry: SqlRegistry) -> None:
    assert registry.get_routing("ep") is None
    assert registry.set_routing(routing()) == 1
    assert registry.set_routing(routing()) == 1  # same desired state: idempotent
    assert registry.set_routing(routing(weight=2)) == 2
    got = registry.get_routing("EP")
    assert got is not None
    assert (got.version, got.applied_version, got.routing) == (2, 0, routing(weight=2))
    assert [r.endpoint for r in registry.list_routing()] == ["ep"]


def test_mark_applied_never_goes_back(registry: SqlRegistry) -> None:
    registry.set_routing(routing())
    registry.set_routing(routing(weight=3))
    registry.mark_applied("ep", 2)
    registry.mark_applied("ep", 1)
    got = registry.get_routing("ep")
    assert got is not None and got.applied_version == 2


def test_generation_counts_routing_fleet_and_instance_changes(registry: SqlRegistry) -> None:
    assert (registry.routing_generation(), registry.applied_generation()) == (0, 0)
    registry.set_routing(routing())
    assert registry.routing_generation() == 1
    registry.set_routing(routing())  # unchanged: no bump
    assert registry.routing_generation() == 1
    registry.upsert_fleet(fleet())
    registry.upsert_fleet(fleet())  # unchanged: no bump
    assert registry.routing_generation() == 2
    registry.upsert_instance(instance(state="Launching"))
    registry.upsert_instance(instance(state="InService"))
    assert registry.routing_generation() == 4
    registry.upsert_instance(instance(state="InService", updated_at=at(30)))  # heartbeat only
    assert registry.routing_generation() == 4
    got = registry.get_instance("ep.A.d1.0")
    assert got is not None and got.updated_at == at(30)
    assert registry.delete_instance("ep.A.d1.0") is True
    assert registry.delete_instance("ep.A.d1.0") is False
    assert registry.routing_generation() == 5
    registry.mark_generation_applied(5)
    registry.mark_generation_applied(3)  # never goes back
    assert registry.applied_generation() == 5


def test_several_instances_are_one_change_to_the_generation(registry: SqlRegistry) -> None:
    """An agent's instances found healthy in one look, or stopped together: one write, and
    the data plane has one change to apply, not one per instance."""
    registry.upsert_instance(instance("f1", 0, state="Launching"))
    start = registry.routing_generation()
    registry.upsert_instances(
        [instance("f1", 0), *(instance("f1", i, state="Launching") for i in (1, 2))]
    )
    assert registry.routing_generation() == start + 1
    assert [(i.index, i.state) for i in registry.list_instances(fleet_id="f1")] == [
        (0, "InService"),
        (1, "Launching"),
        (2, "Launching"),
    ]
    heartbeat = [instance("f1", i, state="Launching", updated_at=at(30)) for i in (1, 2)]
    registry.upsert_instances(heartbeat)  # nothing routed changed: no bump
    registry.upsert_instances([])
    assert registry.routing_generation() == start + 1
    assert registry.delete_instances(["f1.0", "f1.2", "f1.9"]) == 2  # "not found" is success
    assert registry.routing_generation() == start + 2
    assert registry.delete_instances(["f1.0"]) == 0 and registry.delete_instances([]) == 0
    assert registry.routing_generation() == start + 2
    assert [i.instance_id for i in registry.list_instances(fleet_id="f1")] == ["f1.1"]


def test_a_fleets_instances_are_written_in_a_statement_per_kind_not_per_instance(
    registry: SqlRegistry,
) -> None:
    """A launch records all its instances at once, a scale-in deletes them at once: the number
    of statements does not grow with the number of instances (issue 17: each costs ~0.1 ms of
    the worker's CPU on SQLite, ~0.4 ms on PostgreSQL)."""
    registry.upsert_instance(instance("f1", 0, state="Launching"))
    with Statements(registry._engine) as statements:
        registry.upsert_instances(
            [instance("f1", 0), *(instance("f1", i, state="Launching") for i in range(1, 8))]
        )
    # one read of the rows stored, one insert of the 7 new, one update of the changed one, the
    # generation's bump (and on PostgreSQL its lock, a SELECT ... FOR UPDATE)
    assert [s for s in statements.seen if s != "SELECT"] == ["INSERT", "UPDATE", "UPDATE"]
    assert statements.seen.count("SELECT") <= 2
    with Statements(registry._engine) as statements:
        assert registry.delete_instances([f"f1.{i}" for i in range(8)]) == 8
    assert [s for s in statements.seen if s != "SELECT"] == ["DELETE", "UPDATE"]
    assert registry.list_instances(fleet_id="f1") == []


def test_fleets_round_trip_and_filter(registry: SqlRegistry) -> None:
    registry.upsert_fleet(fleet("Ep.A.d1", endpoint="Ep"))
    registry.upsert_fleet(fleet("Ep.A.d2", endpoint="Ep", desired_count=4))
    registry.upsert_fleet(fleet("other.A.d3", endpoint="other"))
    assert registry.get_fleet("Ep.A.d2") == fleet("Ep.A.d2", endpoint="Ep", desired_count=4)
    assert registry.get_fleet("nope") is None
    registry.upsert_fleet(fleet("Ep.A.d1", endpoint="Ep", retired=True))
    assert [f.fleet_id for f in registry.list_fleets("ep")] == ["Ep.A.d2"]
    assert [f.fleet_id for f in registry.list_fleets("EP", include_retired=True)] == [
        "Ep.A.d1",
        "Ep.A.d2",
    ]
    assert len(registry.list_fleets()) == 2


def test_instances_filter_and_count_the_quota_use(registry: SqlRegistry) -> None:
    registry.upsert_instance(instance("f1", 0, state="InService", port=19000, pid=11))
    registry.upsert_instance(instance("f1", 1, state="Launching"))
    registry.upsert_instance(instance("f2", 0, endpoint="other", state="Stopped", host="10.0.0.2"))
    assert registry.get_instance("f1.0") == instance("f1", 0, state="InService", port=19000, pid=11)
    assert [i.instance_id for i in registry.list_instances(fleet_id="f1")] == ["f1.0", "f1.1"]
    assert [i.instance_id for i in registry.list_instances(endpoint="OTHER")] == ["f2.0"]
    assert [i.instance_id for i in registry.list_instances(host="10.0.0.2")] == ["f2.0"]
    assert registry.count_instances() == 2  # Stopped does not count


def test_stopping_reasons_are_the_hosts_instances_being_stopped(registry: SqlRegistry) -> None:
    lost = "host 10.0.0.1 lost: replaced elsewhere"
    registry.upsert_instances(
        [
            instance("f1", 0, state="InService", host="10.0.0.1"),
            instance("f1", 1, state="Stopping", host="10.0.0.1", state_reason=lost),
            instance("f1", 2, state="Stopping", host="10.0.0.1"),
            instance("f1", 3, state="Stopping", host="10.0.0.2", state_reason="scaled in"),
        ]
    )
    assert sorted(registry.stopping_reasons("10.0.0.1")) == ["", lost]
    assert registry.stopping_reasons("10.0.0.2") == ["scaled in"]
    assert registry.stopping_reasons("10.0.0.3") == []


def test_deployments_list_newest_first_and_update(registry: SqlRegistry) -> None:
    registry.create_endpoint(endpoint("ep"), deployment("d1", started=at(0)))
    stored = registry.get_deployment("d1")
    assert stored == deployment("d1", started=at(0))
    updated = deployment("d1", started=at(0), plan={"steps": []}, alarms=["a"])
    registry.update_deployment(updated)
    assert registry.get_deployment("d1") == updated
    registry.finish_operation(
        "ep", "d1", status=EndpointStatus.IN_SERVICE, outcome=DeploymentOutcome.SUCCEEDED
    )
    registry.begin_operation(
        "ep", [EndpointStatus.IN_SERVICE], EndpointStatus.UPDATING, deployment("d2", started=at(9))
    )
    assert [d.deployment_id for d in registry.list_deployments("EP")] == ["d2", "d1"]
    assert [d.deployment_id for d in registry.list_deployments(limit=1)] == ["d2"]
    assert registry.list_deployments("other") == []


def test_events_are_idempotent_by_key_and_ordered(registry: SqlRegistry) -> None:
    registry.create_endpoint(endpoint("ep"), deployment("d1"))
    first = registry.append_event(event(key="step-1-started", n=1))
    assert first.seq is not None
    again = registry.append_event(event(key="step-1-started", n=99))
    assert again == first  # the stored one, not the retry's
    for n in range(2, 6):
        registry.append_event(event(n=n))  # no key: always appended
    events = registry.list_events("d1")
    assert [e.message for e in events] == [f"event {n}" for n in range(1, 6)]
    seqs = [e.seq or 0 for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    after = registry.list_events("d1", after_seq=events[2].seq or 0, limit=1)
    assert [e.message for e in after] == ["event 4"]
    assert registry.list_events("other") == []
