"""A data-plane process killed with SIGKILL leaves its HAProxy running (its own session). The
next one must not serve next to it: both bind the runtime port (SO_REUSEPORT), the orphan with
stale routing, and the orphan would outlive `greenshift up` (found by the chaos suite)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from greenshift.dataplane.haproxy import HAProxyProcess
from greenshift.supervisor import pid_alive
from tests.integration.dataplane_support import Dataplane, wait_for

pytestmark = pytest.mark.timeout(60)


def test_a_restarted_data_plane_retires_the_haproxy_of_its_killed_predecessor(
    dp: Dataplane,
) -> None:
    dp.instance("Shop", "A", "Shop.A.aaaa", 0, dp.model("echo-v1"))
    dp.route("Shop", [("A", 1.0, [("Shop.A.aaaa", 1.0)])])
    assert dp.controller.sync_once()
    orphan = dp.haproxy.pid
    assert orphan is not None and pid_alive(orphan)

    # The controller died; its HAProxy object is forgotten, the process is not.
    killed = dp.haproxy
    dp.haproxy = HAProxyProcess(dp.haproxy.paths.root)
    dp.controller = type(dp.controller)(dp.registry, dp.haproxy, dp.settings)
    assert dp.controller.sync_once()
    assert dp.haproxy.pid != orphan

    def orphan_gone() -> bool:
        try:
            stat = (Path("/proc") / str(orphan) / "stat").read_text()
        except OSError:
            return True
        return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")

    try:
        wait_for(orphan_gone, 15, "the predecessor's HAProxy to exit")
    finally:
        killed.reap_after_crash()  # reaps it: a child of this test
    time.sleep(0.2)
    assert dp.haproxy.runtime.ping()


def test_a_request_in_flight_on_a_killed_instance_is_answered_by_another(dp: Dataplane) -> None:
    """An instance SIGKILLed while it handles a request closes the connection without an answer:
    HAProxy sends the request to another server instead of answering 502 (found by the chaos
    suite killing an instance of the serving fleet)."""
    slow = dp.model("slow", env={"SLOW_MS": "1500"})
    dp.instance("Shop", "A", "Shop.A.aaaa", 0, slow)
    dp.instance("Shop", "A", "Shop.A.aaaa", 1, dp.model("echo-v1"))
    dp.route("Shop", [("A", 1.0, [("Shop.A.aaaa", 1.0)])])
    assert dp.controller.sync_once()
    url = f"{dp.url}/endpoints/Shop/invocations"
    for _ in range(20):  # until one request lands on the slow instance (leastconn picks either)
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(_post, url)
            time.sleep(0.5)
            if answer.done():  # echo-v1 answered at once
                continue
            slow.proc.kill()
            status, body = answer.result(timeout=10)
        assert status == 200, body
        assert json.loads(body)["version"] == "v1"
        return
    pytest.fail("no request reached the slow instance")


def _post(url: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=b'{"x": 1}', headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()
