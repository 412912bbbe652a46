"""The replacement's pure rules (backoff, words) and the healer's report of a lost host: one
HostLost event per fleet however many workers heal the same loss."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from greenshift.hosts import replacement
from greenshift.hosts.healer import Healer
from greenshift.hosts.service import advertisement
from greenshift.hosts.store import HostStore
from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from tests.registry_records import fleet, instance


def test_backoff_doubles_from_the_first_wait_up_to_the_cap() -> None:
    assert [replacement.backoff(n) for n in range(1, 9)] == [2, 4, 8, 16, 32, 60, 60, 60]
    assert replacement.backoff(3, first=0.5, cap=1.5) == 1.5
    with pytest.raises(ValueError):
        replacement.backoff(0)


def test_the_healer_reports_a_lost_host_once_per_fleet_however_many_workers_heal(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    settings = Settings(home=tmp_path, host_lost_after_seconds=3.0)
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
        healers = [Healer(cast(Any, None), registry, store, settings) for _ in range(2)]
        assert healers[0]._out_of_rotation() == {"ep.A.d1": "127.0.0.4"}
        # The second worker's tick finds nothing live on the lost host any more.
        assert healers[1]._out_of_rotation() == {}
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
    finally:
        store.close()
        registry.close()
