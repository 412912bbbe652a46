"""A data-plane process killed with SIGKILL leaves its HAProxy running (its own session). The
next one must not serve next to it: both bind the runtime port (SO_REUSEPORT), the orphan with
stale routing, and the orphan would outlive `greenshift up` (found by the chaos suite)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenshift.dataplane.haproxy import HAProxyProcess
from greenshift.supervisor import pid_alive
from tests.integration.dataplane_support import Dataplane, wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def dp(tmp_path: Path) -> Iterator[Dataplane]:
    d = Dataplane(tmp_path)
    try:
        yield d
    finally:
        d.close()


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
