"""The chaos suite's judgement, on hand-made snapshots: each invariant can fail."""

from __future__ import annotations

from greenshift.dataplane.desired import backend_name
from tests.harness.chaos.invariants import Snapshot, violations
from tests.harness.chaos.trial import deployment_config
from tests.harness.chaos.watch import Sample, held_on_stale, moved_on_stale


def healthy(**changes: object) -> Snapshot:
    base = dict(
        status="InService",
        config_name="c2",
        expected_config="c2",
        expected_count=2,
        fleets={"f2": ("c2", 2)},
        instances={
            "f1-0": ("f1", "Stopped"),
            "f2-0": ("f2", "InService"),
            "f2-1": ("f2", "InService"),
        },
        processes={"f2-0", "f2-1"},
        servers={backend_name("f2"): {"f2-0", "f2-1"}},
    )
    base.update(changes)
    return Snapshot(**base)  # type: ignore[arg-type]


def test_a_settled_consistent_endpoint_has_no_violation() -> None:
    assert violations(healthy()) == []


def test_stuck_or_wrong_config() -> None:
    assert "endpoint still Updating" in violations(healthy(status="Updating"))
    assert violations(healthy(config_name="c1", fleets={"f2": ("c1", 2)})) == [
        "endpoint on c1, expected c2"
    ]


def test_old_fleet_still_serving() -> None:
    found = violations(healthy(fleets={"f1": ("c1", 0), "f2": ("c2", 2)}))
    assert found == ["fleet f1 of c1 still serving"]


def test_orphaned_and_missing_processes() -> None:
    assert violations(healthy(processes={"f2-0", "f2-1", "f1-0"})) == [
        "orphaned model-server processes: ['f1-0']"
    ]
    assert violations(healthy(processes={"f2-0"})) == [
        "InService instances with no process: ['f2-1']"
    ]


def test_missing_instance() -> None:
    found = violations(
        healthy(
            instances={"f2-0": ("f2", "InService"), "f2-1": ("f2", "Launching")},
            processes={"f2-0"},
            servers={backend_name("f2"): {"f2-0"}},
        )
    )
    assert found == ["1 InService instances, expected 2"]


def test_haproxy_disagrees() -> None:
    found = violations(
        healthy(servers={backend_name("f2"): {"f2-0"}, backend_name("f1"): {"f1-0"}})
    )
    assert found == ["HAProxy disagrees with the registry: extra ['f1-0'], missing ['f2-1']"]


def test_faulty_is_a_linear_update_guarded_by_the_alarm() -> None:
    config = deployment_config("FAULTY", alarm="a")
    assert config["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "a"}]}
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "LINEAR"
    assert "RollingUpdatePolicy" in deployment_config("ROLLING")


def test_a_second_haproxy_on_the_stack() -> None:
    assert violations(healthy(haproxy_groups=2)) == [
        "2 HAProxy process groups serve this stack, expected 1"
    ]


def test_two_processes_of_one_instance() -> None:
    assert violations(healthy(duplicates=("f2-1",))) == [
        "more than one process for instances ['f2-1']"
    ]


def test_traffic_moved_forward_on_stale_alarms_is_caught() -> None:
    # The evaluator hung at t=1; alarms stale (5 s) from t=6 on.
    held = [Sample(0, 0.0, False), Sample(2, 0.5, True), Sample(8, 0.5, True), Sample(9, 0.0, True)]
    assert moved_on_stale(held, hung_at=1, stale_seconds=5) == []
    assert held_on_stale(held, hung_at=1, stale_seconds=5) == 1
    moved = [*held[:3], Sample(8.5, 1.0, True)]
    assert moved_on_stale(moved, hung_at=1, stale_seconds=5) == [
        "traffic moved forward on stale alarms: 0.50 -> 1.00 at t+8.5s, "
        "7.5s after the evaluator hung"
    ]
    # Moving before the states were stale, or once the evaluator was replaced, is allowed.
    early = [Sample(0, 0.0, True), Sample(3, 0.5, True), Sample(12, 1.0, False)]
    assert moved_on_stale(early, hung_at=1, stale_seconds=5) == []
    assert held_on_stale(early, hung_at=1, stale_seconds=5) == 0
