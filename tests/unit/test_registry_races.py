"""Races: several registry objects (as several processes would hold) on one database. Exactly one
contender may win each compare-and-set; counters move once per change."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from greenshift.errors import GreenshiftError, ResourceInUse
from greenshift.registry.records import (
    EndpointRouting,
    FleetRoute,
    PendingDeployment,
    VariantRoute,
)
from greenshift.registry.sql import SqlRegistry
from greenshift.status import DeploymentOutcome, EndpointStatus
from tests.registry_records import T0, deployment, endpoint, event

T = TypeVar("T")
UPDATE_FROM = [EndpointStatus.IN_SERVICE]


@pytest.fixture
def registries(registry_url: str) -> Iterator[list[SqlRegistry]]:
    """20 registry objects on one database, each with its own connection pool."""
    regs = [SqlRegistry(registry_url) for _ in range(20)]
    try:
        yield regs
    finally:
        for reg in regs:
            reg.close()


def race(n: int, contender: Callable[[int], T]) -> list[T | GreenshiftError]:
    """Run `contender(i)` for i in 0..n-1 on n threads released at once."""
    barrier = threading.Barrier(n, timeout=30)

    def run(i: int) -> T | GreenshiftError:
        barrier.wait()
        try:
            return contender(i)
        except GreenshiftError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n), timeout=120))


def in_service(registry: SqlRegistry, name: str = "ep") -> None:
    registry.create_endpoint(endpoint(name), deployment("create", name, "CreateEndpoint"))
    registry.finish_operation(
        name, "create", status=EndpointStatus.IN_SERVICE, outcome=DeploymentOutcome.SUCCEEDED
    )


def test_two_registries_race_begin_operation(registries: list[SqlRegistry]) -> None:
    in_service(registries[0])
    results = race(
        2,
        lambda i: registries[i].begin_operation(
            "ep", UPDATE_FROM, EndpointStatus.UPDATING, deployment(f"d{i}")
        ),
    )
    winners = [r for r in results if not isinstance(r, GreenshiftError)]
    losers = [r for r in results if isinstance(r, GreenshiftError)]
    assert len(winners) == 1 and len(losers) == 1
    assert isinstance(losers[0], ResourceInUse)
    stored = registries[1].get_endpoint("ep")
    assert stored is not None and stored.current_deployment_id == winners[0].current_deployment_id


def test_twenty_way_race_has_exactly_one_winner(registries: list[SqlRegistry]) -> None:
    in_service(registries[0])
    results = race(
        20,
        lambda i: registries[i].begin_operation(
            "EP", UPDATE_FROM, EndpointStatus.UPDATING, deployment(f"d{i}")
        ),
    )
    winners = [r for r in results if not isinstance(r, GreenshiftError)]
    assert len(winners) == 1
    assert all(isinstance(r, ResourceInUse) for r in results if r not in winners)
    running = [
        d for d in registries[0].list_deployments("ep") if d.outcome is DeploymentOutcome.RUNNING
    ]
    assert [d.deployment_id for d in running] == [winners[0].current_deployment_id]


def test_twenty_way_create_race_has_exactly_one_winner(registries: list[SqlRegistry]) -> None:
    results = race(
        20,
        lambda i: registries[i].create_endpoint(
            endpoint("Ep" if i % 2 else "EP"), deployment(f"d{i}", "ep", "CreateEndpoint")
        ),
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, ResourceInUse) for r in results if r is not None)
    assert registries[0].count_endpoints() == 1


def test_concurrent_routing_writes_bump_version_and_generation_once_each(
    registries: list[SqlRegistry],
) -> None:
    def write(i: int) -> int:
        route = VariantRoute(
            variant="A", weight=float(i + 1), fleets=[FleetRoute(fleet_id="f", share=1)]
        )
        return registries[i].set_routing(EndpointRouting(endpoint="ep", variants=[route]))

    versions = race(20, write)
    assert sorted(v for v in versions if isinstance(v, int)) == list(range(1, 21))
    routing = registries[0].get_routing("ep")
    assert routing is not None and routing.version == 20
    assert registries[0].routing_generation() == 20


def test_concurrent_events_with_one_key_store_one(registries: list[SqlRegistry]) -> None:
    in_service(registries[0])
    results = race(10, lambda i: registries[i].append_event(event("create", key="k1", n=i)))
    seqs = {r.seq for r in results if not isinstance(r, GreenshiftError)}
    assert len(seqs) == 1 and None not in seqs
    assert len(registries[0].list_events("create")) == 1


# --- separate processes on one SQLite file ---------------------------------------------------


def _contend(url: str, index: int, barrier: Any, results: Any) -> None:
    registry = SqlRegistry(url)
    try:
        barrier.wait()
        registry.begin_operation(
            "ep", UPDATE_FROM, EndpointStatus.UPDATING, deployment(f"p{index}")
        )
        results.put("won")
    except ResourceInUse:
        results.put("lost")
    except Exception as exc:
        results.put(repr(exc))
    finally:
        registry.close()


def test_processes_racing_on_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    registry = SqlRegistry(url)
    in_service(registry)
    n = 4
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(n, timeout=60)
    queue = ctx.Queue()
    processes = [ctx.Process(target=_contend, args=(url, i, barrier, queue)) for i in range(n)]
    try:
        for process in processes:
            process.start()
        results = [queue.get(timeout=90) for _ in range(n)]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join(timeout=10)
        queue.close()
        queue.join_thread()
    assert sorted(results) == ["lost"] * (n - 1) + ["won"]
    stored = registry.get_endpoint("ep")
    assert stored is not None and stored.status is EndpointStatus.UPDATING
    registry.close()


def test_threads_of_one_registry_record_progress_once_each(registry_url: str) -> None:
    """Many activity threads share one registry object (one per worker process): every step's
    progress and event land exactly once, also when each step is recorded twice (a retry)."""
    registry = SqlRegistry(registry_url)
    try:
        for i in range(8):
            registry.create_endpoint(
                endpoint(f"ep{i}"), deployment(f"d{i}", f"ep{i}", "CreateEndpoint")
            )

        def steps(i: int) -> int:
            for n in range(10):
                pending = PendingDeployment(
                    config_name="c", start_time=T0, variants=[], phase=f"step {n}"
                )
                for _ in range(2):
                    registry.record_progress(
                        f"ep{i}", f"d{i}", pending, event(f"d{i}", key=f"d{i}:{n}", n=n)
                    )
            return i

        assert sorted(r for r in race(16, lambda i: steps(i % 8)) if isinstance(r, int)) == sorted(
            list(range(8)) * 2
        )
        for i in range(8):
            assert [e.detail["n"] for e in registry.list_events(f"d{i}")] == list(range(10))
            stored = registry.get_endpoint(f"ep{i}")
            assert stored is not None and stored.pending is not None
            assert stored.pending.phase == "step 9"
    finally:
        registry.close()
