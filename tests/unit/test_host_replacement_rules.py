"""The replacement's pure rules (backoff, words) and the healer's report of a lost host: one
HostLost event per fleet however many workers heal the same loss; a fleet left short after a
loss is replaced again when a host joins."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple, cast

import pytest

from greenshift.hosts import replacement
from greenshift.hosts.healer import HOST_LOST, Healer, short_after_a_loss
from greenshift.hosts.messages import ReplaceInput
from greenshift.hosts.service import advertisement
from greenshift.hosts.store import HostStore
from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from tests.registry_records import fleet, instance


class StartedWorkflows:
    """A Temporal client's start_workflow, recording what it was asked to start."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []

    async def start_workflow(self, _name: str, data: ReplaceInput, **_kwargs: Any) -> None:
        self.started.append((data.fleet_id, data.lost_host))


class LostHost(NamedTuple):
    registry: SqlRegistry
    store: HostStore
    settings: Settings


@pytest.fixture
def lost_host(tmp_path: Path) -> Iterator[LostHost]:
    """Host 127.0.0.4 silent for 10 s (lost after 3), 127.0.0.2 alive; fleet ep.A.d1 wants 4
    instances and has two on each."""
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    registry = SqlRegistry(url)
    store = HostStore(url)
    try:
        lost = advertisement("127.0.0.4", "greenshift")
        store.register(
            lost.model_copy(update={"heartbeat_at": lost.heartbeat_at - timedelta(seconds=10)})
        )
        store.register(advertisement("127.0.0.2", "greenshift"))
        registry.upsert_fleet(fleet(desired_count=4))
        for index, host in enumerate(["127.0.0.2", "127.0.0.2", "127.0.0.4", "127.0.0.4"]):
            registry.upsert_instance(instance(index=index, host=host))
        yield LostHost(registry, store, Settings(home=tmp_path, host_lost_after_seconds=3.0))
    finally:
        store.close()
        registry.close()


def test_backoff_doubles_from_the_first_wait_up_to_the_cap() -> None:
    assert [replacement.backoff(n) for n in range(1, 9)] == [2, 4, 8, 16, 32, 60, 60, 60]
    assert replacement.backoff(3, first=0.5, cap=1.5) == 1.5
    with pytest.raises(ValueError):
        replacement.backoff(0)


def test_the_healer_reports_a_lost_host_once_per_fleet_however_many_workers_heal(
    lost_host: LostHost,
) -> None:
    registry, store, settings = lost_host
    healers = [Healer(cast(Any, None), registry, store, settings) for _ in range(2)]
    assert healers[0]._survey()[0] == {"ep.A.d1": "127.0.0.4"}
    # The second worker's tick finds nothing live on the lost host any more.
    assert healers[1]._survey()[0] == {}
    events = registry.list_events("d1")
    assert [e.type for e in events] == [replacement.HOST_LOST]
    assert events[0].message == (
        "Host 127.0.0.4 lost (no heartbeat for 3 s): 2 instance(s) of fleet ep.A.d1 taken "
        "out of rotation; replacing them on the other hosts."
    )
    assert events[0].actor == "healer" and events[0].detail["instances"] == 2
    states = {r.instance_id: r.state for r in registry.list_instances()}
    assert states == {
        "ep.A.d1.0": "InService",
        "ep.A.d1.1": "InService",
        "ep.A.d1.2": "Stopping",
        "ep.A.d1.3": "Stopping",
    }


def test_a_fleet_is_short_after_a_loss_only_while_it_lacks_instances_lost_with_a_host() -> None:
    lost = HOST_LOST.format(address="127.0.0.4", seconds=3.0)
    kept = [instance(index=i, host="127.0.0.2") for i in range(2)]
    gone = [
        instance(index=i, host="127.0.0.4", state="Stopping", state_reason=lost) for i in (2, 3)
    ]
    assert short_after_a_loss([fleet(desired_count=4)], kept + gone) == {"ep.A.d1": "127.0.0.4"}
    # Whole again, retired, or Stopping for another reason (a scale-in): nothing to replace.
    assert short_after_a_loss([fleet(desired_count=2)], kept + gone) == {}
    assert short_after_a_loss([fleet(desired_count=4, retired=True)], kept + gone) == {}
    scaled_in = [g.model_copy(update={"state_reason": "scale in"}) for g in gone]
    assert short_after_a_loss([fleet(desired_count=4)], kept + scaled_in) == {}


async def test_a_replacement_that_gave_up_starts_again_when_a_host_joins(
    lost_host: LostHost,
) -> None:
    registry, store, settings = lost_host
    client = StartedWorkflows()
    healer = Healer(cast(Any, client), registry, store, settings)
    assert await healer.heal_once() == ["ep.A.d1"]  # the loss
    # Its replacement gave up (no room): ticks with the same hosts start nothing more.
    assert await healer.heal_once() == []
    store.register(advertisement("127.0.0.2", "greenshift"))  # a heartbeat is no news
    assert await healer.heal_once() == []
    store.register(advertisement("127.0.0.5", "greenshift"))  # room arrives
    assert await healer.heal_once() == ["ep.A.d1"]
    assert await healer.heal_once() == []
    # A host that stops draining is room too; a fleet made whole is not replaced again.
    store.set_draining("127.0.0.5", True)
    assert await healer.heal_once() == []
    store.set_draining("127.0.0.5", False)
    assert await healer.heal_once() == ["ep.A.d1"]
    store.set_draining("127.0.0.5", True)
    assert await healer.heal_once() == []
    for index in (4, 5):
        registry.upsert_instance(instance(index=index, host="127.0.0.5"))
    store.set_draining("127.0.0.5", False)
    assert await healer.heal_once() == []
    assert client.started == [("ep.A.d1", "127.0.0.4")] * 3
