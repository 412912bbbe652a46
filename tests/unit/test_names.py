"""greenshift.names holds every activity name once: each activity a worker or a host agent
registers is named there, and each name there is registered by one of them (a name with no
registration would leave a workflow's activity scheduled forever)."""

from __future__ import annotations

from pathlib import Path

from temporalio.activity import _Definition

from greenshift import names
from greenshift.hosts.activities import HostActivities
from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from tests.fakes import FakeAlarms, FakeFleet, FakeRouter
from worker.build import Dependencies, worker_activities


def _registered(activities: list[object]) -> set[str]:
    found = set()
    for fn in activities:
        definition = _Definition.from_callable(fn)
        assert definition is not None and definition.name is not None, fn
        found.add(definition.name)
    return found


def _worker_names(tmp_path: Path) -> set[str]:
    settings = Settings(home=tmp_path)
    deps = Dependencies(
        settings=settings,
        registry=SqlRegistry(f"sqlite:///{tmp_path / 'registry.db'}", arn_for=settings.arn),
        fleet=FakeFleet(),
        router=FakeRouter(),
        alarms=FakeAlarms(),
    )
    return _registered(worker_activities(deps))


def _host_agent_names() -> set[str]:
    # Building the bound methods needs no agent: registration reads only their definitions.
    return _registered(HostActivities.__new__(HostActivities).all())


def test_every_registered_worker_activity_is_named_in_names(tmp_path: Path) -> None:
    assert _worker_names(tmp_path) - names.WORKER_ACTIVITIES == set()


def test_every_worker_activity_name_is_registered(tmp_path: Path) -> None:
    assert names.WORKER_ACTIVITIES - _worker_names(tmp_path) == set()


def test_host_agent_activities_match_their_names() -> None:
    assert _host_agent_names() == names.HOST_AGENT_ACTIVITIES


def test_activity_names_are_distinct() -> None:
    constants = [v for k, v in vars(names).items() if k.isupper() and v in names.ACTIVITIES]
    assert len(constants) == len(set(constants)) == len(names.ACTIVITIES)
    assert not names.WORKER_ACTIVITIES & names.HOST_AGENT_ACTIVITIES


def test_fleet_keys_round_trip() -> None:
    key = names.fleet_key("green", "A")
    assert key == "green/A"
    assert names.parse_fleet_key(key) == ("green", "A")
