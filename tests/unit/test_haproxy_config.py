"""Desired state from registry records and its rendering as HAProxy config and maps."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from greenshift import binaries
from greenshift.dataplane.config import Listen, Paths, render, render_picks, render_slots
from greenshift.dataplane.desired import compute, haproxy_id
from greenshift.registry.records import (
    EndpointRouting,
    FleetRoute,
    InstanceRecord,
    RoutingRecord,
    VariantRoute,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _instance(fleet: str, index: int, state: str = "InService", port: int = 9000) -> InstanceRecord:
    return InstanceRecord(
        instance_id=f"{fleet}.{index}",
        fleet_id=fleet,
        endpoint="Shop",
        variant="A",
        index=index,
        port=port + index,
        state=state,
        updated_at=NOW,
    )


def _record(endpoint: str, version: int, *variants: VariantRoute) -> RoutingRecord:
    return RoutingRecord(
        endpoint=endpoint,
        version=version,
        routing=EndpointRouting(endpoint=endpoint, variants=list(variants)),
    )


ROUTING = [
    _record(
        "Shop",
        4,
        VariantRoute(
            variant="A",
            weight=1,
            routing_strategy="RANDOM",
            fleets=[
                FleetRoute(fleet_id="blue", share=0.9),
                FleetRoute(fleet_id="green", share=0.1),
            ],
        ),
        VariantRoute(variant="B", weight=1, fleets=[FleetRoute(fleet_id="bee", share=1.0)]),
    ),
    _record(
        "Cart", 1, VariantRoute(variant="A", weight=1, fleets=[FleetRoute(fleet_id="c", share=1)])
    ),
]
INSTANCES = [
    _instance("blue", 0),
    _instance("blue", 1, state="Stopping"),
    _instance("green", 0),
    _instance("bee", 0, state="Launching"),
    _instance("c", 0, state="Stopped"),
]


def test_desired_state_layout() -> None:
    state = compute(ROUTING, INSTANCES)
    assert state.versions == {"Shop": 4, "Cart": 1}
    assert dict(state.slots) == {"Cart": 0, "Cart/A": 1, "Shop": 16, "Shop/A": 17, "Shop/B": 18}
    blue = state.backend("f.blue")
    assert blue is not None and blue.balance == "random(1)" and blue.variant == "A"
    assert [(s.name, s.enabled, s.backup) for s in blue.servers] == [
        ("blue.0", True, False),
        ("blue.1", False, False),
        ("green.0", True, True),  # the variant's other fleet: a backup (desired.py says why)
    ]
    bee = state.backend("f.bee")
    assert bee is not None and bee.balance == "leastconn"
    c = state.backend("f.c")
    assert c is not None and c.servers == ()  # Stopped instances are gone from the data plane
    # Variant B has no InService instance: Shop's traffic all goes to A, 90/10 blue/green.
    shop = [(lo, hi, b) for lo, hi, b in state.picks if 160_000 <= lo < 170_000]
    assert shop == [(160_000, 168_999, "f.blue"), (169_000, 169_999, "f.green")]
    assert not [p for p in state.picks if 180_000 <= p[0] < 190_000]  # target B: no capacity


def test_backups_are_the_variants_other_fleets_with_a_share() -> None:
    routing = [
        _record(
            "Shop",
            1,
            VariantRoute(
                variant="A",
                weight=1,
                fleets=[
                    FleetRoute(fleet_id="blue", share=1.0),
                    FleetRoute(fleet_id="green", share=0.0),
                ],
            ),
            VariantRoute(variant="B", weight=1, fleets=[FleetRoute(fleet_id="bee", share=1.0)]),
        )
    ]
    state = compute(routing, [_instance("blue", 0), _instance("green", 0), _instance("bee", 0)])
    blue, green = state.backend("f.blue"), state.backend("f.green")
    assert blue is not None and green is not None
    assert [s.name for s in blue.servers] == ["blue.0"]  # a share of 0 is nobody's backup
    assert [s.name for s in green.servers] == ["green.0"]  # and has none: no pick leads to it
    bee = state.backend("f.bee")
    assert bee is not None and [s.name for s in bee.servers] == ["bee.0"]  # other variant: not
    # Backups change no pick: the shares stay exact.
    assert state.picks == compute(routing[:1], [_instance("blue", 0), _instance("bee", 0)]).picks


def test_removed_routing_disappears() -> None:
    state = compute(ROUTING[:1], INSTANCES)
    assert "cart" not in dict(state.slots)
    assert state.backend("f.c") is None


def test_topology_ignores_weights_and_servers() -> None:
    a = compute(ROUTING, INSTANCES)
    b = compute(ROUTING, [*INSTANCES, _instance("bee", 1)])
    assert a.topology() == b.topology() and a.picks != b.picks


def test_ids_are_valid_haproxy_names() -> None:
    assert haproxy_id("ep.v-1.abc_d:1") == "ep.v-1.abc_d:1"
    assert haproxy_id("a b/c") == "a_b_c"


def test_rendered_config_is_accepted_by_haproxy(tmp_path: Path) -> None:
    state = compute(ROUTING, INSTANCES)
    paths = Paths(tmp_path)
    listen = Listen(host="127.0.0.1", runtime_port=1, stats_port=2, account_id="123456789012")
    paths.slots_map.write_text(render_slots(state))
    paths.picks_map.write_text(render_picks(state))
    text = render(state, paths, listen)
    assert "of account 123456789012 not found." in text
    assert "server blue.1 127.0.0.1:9001 weight 1 pool-max-conn -1 disabled" in text
    assert "server green.0 127.0.0.1:9000 weight 1 pool-max-conn -1 backup check" in text
    assert "observe layer4 error-limit 1 on-error mark-down" in text
    paths.config.write_text(text)
    checked = subprocess.run(
        [binaries.haproxy(), "-c", "-f", str(paths.config)], capture_output=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr.decode()
    assert b"WARNING" not in checked.stderr


def test_stats_listen_on_loopback_whatever_the_host(tmp_path: Path) -> None:
    # The stats page and /metrics name every endpoint and fleet, with no authentication.
    state = compute(ROUTING, INSTANCES)
    listen = Listen(host="0.0.0.0", runtime_port=8080, stats_port=8405, account_id="1")
    text = render(state, Paths(tmp_path), listen)
    assert "bind 127.0.0.1:8405" in text
    assert "bind 0.0.0.0:8080" in text


def _frontends(text: str) -> dict[str, list[str]]:
    """Each frontend's lines, by name."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line and not line.startswith(" "):
            name = line.split()
            current = found.setdefault(name[1], []) if name[0] == "frontend" else None
        elif current is not None and line.strip():
            current.append(line.strip())
    return found


def test_a_stopping_worker_routes_maps_and_counts_nothing_itself(tmp_path: Path) -> None:
    """config.handover_rules: a worker that is stopping hands each new request to its
    successor. Every rule that reads the routing, rewrites the request or handles the answer
    must agree on that, so each one is guarded by the one decision taken on arrival."""
    state = compute(ROUTING, INSTANCES)
    routing_dependent = ("txn.route", "txn.key", "set-uri", "track-sc", "del-header", "return")
    for sigv4 in (False, True):
        listen = Listen("127.0.0.1", 1, 2, "1", access_log=True, sigv4=sigv4)
        runtime = {
            name: lines
            for name, lines in _frontends(render(state, Paths(tmp_path), listen)).items()
            if name.startswith("runtime")
        }
        assert len(runtime) == (3 if sigv4 else 2)
        for name, lines in runtime.items():
            rules = [r for r in lines if r.startswith(("http-request", "http-response"))]
            decided = rules.index("http-request set-var(txn.handover) int(1) if { stopping }")
            # `stopping` is read once, on arrival: it turns true under a request already routed
            assert not [r for r in lines if "stopping" in r.replace(str(tmp_path), "")][1:]
            routes = [r for r in lines if r.startswith(("use_backend", "default_backend"))]
            assert routes[0] == f"use_backend gs_successor_{name} if handover"
            after = rules[decided + 1 :]
            guarded = [r for r in after if r.startswith("http-response")] + [
                r
                for r in after
                if any(k in r for k in routing_dependent) and "set-var(txn.route)" not in r
            ]
            assert guarded, name
            unguarded = [r for r in guarded if "!handover" not in r]
            # The only answers given before routing are the same whoever gives them.
            assert all(
                "UnknownOperationException" in r or "exceeds the maximum" in r
                or "Content-Length" in r or "auth_" in r
                for r in unguarded
            ), unguarded  # fmt: skip


def test_every_stream_goes_through_the_stream_relay_once_authenticated(tmp_path: Path) -> None:
    """relay.py's StreamRelay ends a stream the model's side broke with StreamBroken: every
    response stream goes there from the frontend that authenticated it (after the signature
    check, before any routing) and comes back to runtime_streamed, a 0600 unix socket that
    routes, maps and logs it once and relays nothing."""
    state = compute(ROUTING, INSTANCES)
    paths = Paths(tmp_path)
    relay_rule = (
        "http-request set-var(txn.relay) int(2) if { path_end /invocations-response-stream }"
        " !relayed"
    )
    to_relay = "use_backend gs_stream_relay if { var(txn.relay) -m int eq 2 }"
    for sigv4 in (False, True):
        listen = Listen("127.0.0.1", 1, 2, "1", access_log=True, sigv4=sigv4)
        text = render(state, paths, listen)
        frontends = _frontends(text)
        relaying = ["runtime", "runtime_relayed"] if sigv4 else ["runtime"]
        for name in relaying:
            lines = frontends[name]
            assert lines.count(relay_rule) == 1, name
            assert to_relay in lines, name
            assert "http-request set-log-level silent if relayed" in lines
            if sigv4:  # the signature is checked before the stream leaves
                auth = [i for i, r in enumerate(lines) if "lua.gs_" in r]
                assert auth and max(auth) < lines.index(relay_rule), name
            routing = [i for i, r in enumerate(lines) if "set-var(txn.route)" in r]
            assert lines.index(relay_rule) < min(routing), name
            assert lines.index(to_relay) < lines.index("use_backend %[var(txn.route)] if solo")
        streamed = frontends["runtime_streamed"]
        assert streamed[0] == f"bind unix@{paths.streamed_socket} mode 600"
        assert not [r for r in streamed if "txn.relay" in r or "relayed" in r or "lua." in r]
        assert f"backend gs_stream_relay\n  server relay unix@{paths.stream_relay_socket}" in text
        assert (
            f"backend gs_successor_runtime_streamed\n  server successor "
            f"unix@{paths.streamed_socket}" in text
        )
