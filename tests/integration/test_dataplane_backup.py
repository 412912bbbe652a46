"""A fleet of one instance whose process is SIGKILLed under steady load loses no request: until
the fleet agent and the controller would notice, HAProxy marks the dead server down on the first
refused connection and redispatches to the variant's other fleet (its backup servers); once a
process answers on that port again, the health check brings the server back by itself."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenshift.loadgen import SteadyLoad
from tests.integration.dataplane_support import Dataplane, wait_for

pytestmark = pytest.mark.timeout(120)

RATE = 100.0  # requests per second


@pytest.fixture
def dp(tmp_path: Path) -> Iterator[Dataplane]:
    plane = Dataplane(tmp_path)
    stop = threading.Event()
    plane.controller.interval = 0.1
    loop = threading.Thread(target=plane.controller.run, args=(stop,), daemon=True)
    loop.start()
    try:
        yield plane
    finally:
        stop.set()
        loop.join(10)
        plane.close()


def test_killed_single_instance_fleet_loses_no_request(dp: Dataplane) -> None:
    for i in range(2):
        dp.instance("Shop", "A", "Shop.A.blue", i, dp.model("echo-v1"))
    green = dp.model("echo-v2")
    dp.instance("Shop", "A", "Shop.A.green", 0, green)
    dp.route("Shop", [("A", 1.0, [("Shop.A.blue", 0.5), ("Shop.A.green", 0.5)])])
    generation = dp.registry.routing_generation()
    wait_for(lambda: dp.registry.applied_generation() >= generation, 10, "routing applied")

    load = SteadyLoad(dp.url, "Shop", rate=RATE, duration=30, max_requests=3000).start()
    time.sleep(2.0)
    killed_at = time.monotonic() - load.started_at
    os.kill(green.proc.pid, signal.SIGKILL)
    green.proc.wait(5)
    # The registry still says InService (the fleet agent has not looked yet): the picks keep
    # sending half the traffic to the green backend for these 3 s.
    time.sleep(3.0)
    revived_at = time.monotonic() - load.started_at
    dp.model("echo-v2", port=green.port)
    time.sleep(3.0)
    report = load.stop()

    assert not report.failed, f"{len(report.failed)} failed, e.g. {report.failed[:3]}"
    assert report.sent >= 0.8 * RATE * 8
    before = [a for a in report.answers if a.at < killed_at - 0.1]
    dead = [a for a in report.answers if killed_at + 0.5 < a.at < revived_at]
    back = [a for a in report.answers if a.at > revived_at + 1.5]
    # Normal operation: the backups take nothing, the shares are the set ones.
    assert abs(sum(a.version == "v2" for a in before) / len(before) - 0.5) <= 0.05
    # The green process is gone: the variant's other fleet answers everything.
    assert len(dead) >= 150 and {a.version for a in dead} == {"v1"}
    # A process answers on the port again: its health check brings it back, shares as set.
    assert abs(sum(a.version == "v2" for a in back) / len(back) - 0.5) <= 0.1
