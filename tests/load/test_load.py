"""Short form of the load suite (bench/load.py runs the full one): 3 endpoints under steady
traffic updated at once with different strategies, then 100 UpdateEndpoint calls racing on one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.stack import Stack, processes_mentioning, running_stack
from tests.load.scenario import prepare, race, update_concurrently

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ENDPOINTS = ["load-0", "load-1", "load-2"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("greenshift-load")
    with running_stack(home) as running:
        yield running
    assert processes_mentioning(str(running.settings.home_dir)) == []


def test_concurrent_updates_under_traffic_then_a_100_way_race(stack: Stack) -> None:
    prepare(stack, ENDPOINTS, instances=2, timeout=120)
    result = update_concurrently(stack, ENDPOINTS, rate=10, timeout=150, wait=2)

    outcomes = {d.endpoint: (d.strategy, d.outcome, d.failure_reason) for d in result.deployments}
    assert all(d.outcome == "InService" for d in result.deployments), outcomes
    assert result.sent > 3 * 10 * 10
    failed = {n: r.failed[:3] for n, r in result.traffic.items() if r.failed}
    assert result.failed == 0, failed
    for name, report in result.traffic.items():
        assert {"v1", "v2"} <= set(report.by_version()), (name, report.by_version())

    race(stack, "load-0", 100, "load-v1", result)
    assert result.race_winners == 1, result.race_errors
    assert dict(result.race_errors) == {f"ValidationException: {result.race_expected_message}": 99}
