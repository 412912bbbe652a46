"""RoutingStrategy reaches HAProxy: under LEAST_OUTSTANDING_REQUESTS a slow instance of a fleet
receives fewer requests than its fast neighbour; under RANDOM they share about evenly. Real model
processes behind the real data plane; the routing record is what the traffic activity writes."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from activities.routing import routing_for
from greenshift.planning.model import TrafficStep, VariantTraffic
from tests.integration.dataplane_support import Dataplane

pytestmark = pytest.mark.timeout(120)

REQUESTS = 160
CONCURRENCY = 8


def _version(url: str) -> str:
    request = urllib.request.Request(
        url, data=b'{"x": 1}', headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.loads(answer.read())["version"])


def _served_by(dp: Dataplane, strategy: str) -> Counter[str]:
    """Route endpoint `e` to one fleet of a fast and a slow instance with `strategy`, as the
    shift-traffic activity would, and count who answers REQUESTS concurrent requests."""
    step = TrafficStep(variants={"A": VariantTraffic(weight=1, blue=0, green=1)}, message="all")
    routing = routing_for("e", step, {"green/A": "e.A.f"}, {"green/A": strategy})
    version = dp.registry.set_routing(routing)
    assert dp.controller.sync_once()
    record = dp.registry.get_routing("e")
    assert record is not None and record.applied_version == version
    url = f"{dp.url}/endpoints/e/invocations"
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        return Counter(pool.map(lambda _: _version(url), range(REQUESTS)))


def test_least_outstanding_requests_spares_the_slow_instance_random_does_not(
    dp: Dataplane,
) -> None:
    dp.instance("e", "A", "e.A.f", 0, dp.model("echo-v1"))
    dp.instance("e", "A", "e.A.f", 1, dp.model("slow", {"SLOW_MS": "100"}))

    least = _served_by(dp, "LEAST_OUTSTANDING_REQUESTS")
    assert sum(least.values()) == REQUESTS
    # leastconn: the slow instance holds its requests ~100x longer, so it is picked far less.
    assert least["slow"] < REQUESTS * 0.25, least

    random = _served_by(dp, "RANDOM")
    assert sum(random.values()) == REQUESTS
    # random ignores load: about half each (binomial, 160 draws: 0.3-0.7 is > 6 sigma wide).
    assert REQUESTS * 0.3 < random["slow"] < REQUESTS * 0.7, random
    assert random["slow"] > least["slow"] * 2
