"""Only container fleets' backends frame streams (eventstream.lua): the rest of the data plane's
configuration is what it was without them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from greenshift import binaries
from greenshift.dataplane.config import (
    EVENTSTREAM_LUA,
    Listen,
    Paths,
    render,
    render_picks,
    render_slots,
)
from greenshift.dataplane.desired import backend_name, compute
from tests.unit.test_haproxy_config import INSTANCES, ROUTING

LISTEN = Listen(host="127.0.0.1", runtime_port=1, stats_port=2, account_id="123456789012")


def _backend_block(text: str, name: str) -> str:
    start = text.index(f"backend {name}\n")
    end = text.find("\nbackend ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def test_only_container_backends_get_the_filter_and_the_rest_is_unchanged(
    tmp_path: Path,
) -> None:
    paths = Paths(tmp_path)
    without = render(compute(ROUTING, INSTANCES), paths, LISTEN)
    with_green = render(compute(ROUTING, INSTANCES, containers={"green"}), paths, LISTEN)
    assert "filter lua." not in without and str(EVENTSTREAM_LUA) not in without
    assert f"lua-load-per-thread {EVENTSTREAM_LUA}" in with_green
    green = _backend_block(with_green, backend_name("green"))
    assert "filter lua.gs_eventstream" in green
    assert (
        "set-var(txn.gses) int(1) if { req.hdr(X-Greenshift-Response-Stream) -m str "
        "invocations-response-stream }" in green
    )
    # Everything else (frontend, the built-in fleets' backends) is byte for byte the same.
    stripped = with_green.replace(f"  lua-load-per-thread {EVENTSTREAM_LUA}\n", "")
    stripped = "".join(
        line
        for line in stripped.splitlines(keepends=True)
        if "gs_eventstream" not in line and "txn.gses" not in line
    )
    assert stripped == without


def test_a_config_with_a_container_fleet_is_accepted_by_haproxy(tmp_path: Path) -> None:
    state = compute(ROUTING, INSTANCES, containers={"green", "c"})
    assert state.topology() != compute(ROUTING, INSTANCES).topology()  # a reload applies it
    paths = Paths(tmp_path)
    paths.slots_map.write_text(render_slots(state))
    paths.picks_map.write_text(render_picks(state))
    paths.config.write_text(render(state, paths, LISTEN))
    checked = subprocess.run(
        [binaries.haproxy(), "-c", "-f", str(paths.config)], capture_output=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr.decode()
    assert b"WARNING" not in checked.stderr
