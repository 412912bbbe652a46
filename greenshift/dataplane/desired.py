"""The data plane's desired state, computed from registry records (pure).

Layout in HAProxy (see config.py): one backend per fleet (its instances as servers); a string
map `slots` from "<endpoint>" and "<endpoint>/<variant>" (exact case, see below) to a slot
number; an integer map `picks` from `slot * RESOLUTION + rand(RESOLUTION)` ranges to the fleet
backend. Backends and slots change only with a reload ("topology"); servers, their states and
the picks change through the runtime API.

Backups (why): the picks choose a fleet, and HAProxy retries a failed connection only within the
chosen backend; a fleet of one instance that dies would answer 503 until the fleet agent and the
controller notice (about a second). So each fleet backend also holds, as `backup` servers, the
instances of the variant's other fleets that have a share: they take no traffic while one of the
fleet's own servers is up (the shares stay exact), and the retry of a request whose server just
died lands on them. A fleet with share 0 is nobody's backup (it must not receive traffic) and has
none (no pick leads to it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from greenshift.capture.rules import CaptureRule
from greenshift.dataplane.routing import (
    RESOLUTION,
    allocate,
    endpoint_fleet_shares,
    fleet_shares_in_variant,
    ranges,
)
from greenshift.registry.records import InstanceRecord, RoutingRecord
from greenshift.status import HOLDING_STATES, InstanceState

SLOTS_PER_ENDPOINT = 16  # slot 0: the endpoint's weighted split; 1..15: one per target variant
ROUTABLE_STATES = frozenset(HOLDING_STATES)  # present as servers
SERVING_STATE = InstanceState.IN_SERVICE  # the only state that takes traffic

_INVALID = re.compile(r"[^A-Za-z0-9_.:-]")


def haproxy_id(text: str) -> str:
    """A valid HAProxy proxy/server name (ids from greenshift.naming already are)."""
    return _INVALID.sub("_", text)


BACKEND_PREFIX = "f."  # of every fleet backend's name, and of nothing else in the slots map


def backend_name(fleet_id: str) -> str:
    return BACKEND_PREFIX + haproxy_id(fleet_id)


def balance_for(strategy: str) -> str:
    """SageMaker RoutingStrategy -> HAProxy balance (both support dynamic servers). RANDOM is
    `random(1)`: HAProxy's plain `random` is `random(2)`, two draws and the less loaded one, which
    is a load-aware choice, not SageMaker's uniform one."""
    return "random(1)" if strategy.upper() == "RANDOM" else "leastconn"


@dataclass(frozen=True)
class Server:
    name: str
    host: str
    port: int
    enabled: bool  # False: in maintenance (kept so in-flight requests finish)
    backup: bool = False  # an instance of another fleet of the variant (see the docstring)


@dataclass(frozen=True)
class Backend:
    name: str
    endpoint: str
    variant: str
    fleet_id: str
    balance: str
    servers: tuple[Server, ...]
    capture: CaptureRule | None = None  # the fleet's DataCaptureConfig (greenshift/capture)


@dataclass(frozen=True)
class DesiredState:
    backends: tuple[Backend, ...] = ()
    slots: tuple[tuple[str, int], ...] = ()  # map key -> slot
    picks: tuple[tuple[int, int, str], ...] = ()  # inclusive range -> backend name
    versions: dict[str, int] = field(default_factory=dict)  # endpoint -> routing version

    def topology(self) -> tuple[object, ...]:
        """What only a reload can change: the backends (and their algorithm) and the slots."""
        return (
            tuple((b.name, b.balance, b.variant, b.endpoint, b.capture) for b in self.backends),
            self.slots,
        )

    def backend(self, name: str) -> Backend | None:
        for b in self.backends:
            if b.name == name:
                return b
        return None


def compute(
    routings: Iterable[RoutingRecord],
    instances: Iterable[InstanceRecord],
    captures: Mapping[str, CaptureRule] | None = None,
) -> DesiredState:
    """The desired data plane for these routing records and instance records; `captures` maps
    a fleet id to its data-capture rule."""
    by_fleet: dict[str, list[InstanceRecord]] = {}
    for inst in instances:
        if inst.state in ROUTABLE_STATES and inst.port:
            by_fleet.setdefault(inst.fleet_id, []).append(inst)
    healthy = {
        fid: sum(1 for i in insts if i.state == SERVING_STATE) for fid, insts in by_fleet.items()
    }

    backends: dict[str, Backend] = {}
    slots: list[tuple[str, int]] = []
    picks: list[tuple[int, int, str]] = []
    versions: dict[str, int] = {}
    records = sorted(routings, key=lambda r: r.endpoint.lower())
    for e_index, record in enumerate(records):
        routing = record.routing
        versions[record.endpoint] = record.version
        # Exact case: SageMaker's endpoint names are unique case-insensitively, but "the case is
        # preserved and must be matched in InvokeEndpoint" (CreateEndpoint's EndpointName).
        key = record.endpoint
        base_slot = e_index * SLOTS_PER_ENDPOINT
        slots.append((key, base_slot))
        parts = allocate([(backend_name(f), s) for f, s in endpoint_fleet_shares(routing, healthy)])
        picks.extend(ranges(parts, base_slot * RESOLUTION))
        for v_index, variant in enumerate(routing.variants[: SLOTS_PER_ENDPOINT - 1]):
            slot = base_slot + 1 + v_index
            slots.append((f"{key}/{variant.variant}", slot))
            vparts = allocate(
                [(backend_name(f), s) for f, s in fleet_shares_in_variant(variant, healthy)]
            )
            picks.extend(ranges(vparts, slot * RESOLUTION))
            own = {
                f.fleet_id: tuple(
                    Server(
                        name=haproxy_id(i.instance_id),
                        host=i.host,
                        port=int(i.port or 0),
                        enabled=i.state == SERVING_STATE,
                    )
                    for i in sorted(by_fleet.get(f.fleet_id, []), key=lambda i: i.instance_id)
                )
                for f in variant.fleets
            }
            for fleet in variant.fleets:
                name = backend_name(fleet.fleet_id)
                # A fleet with share 0 gets no picks: it needs no backups (nor is one).
                backups = tuple(
                    replace(s, backup=True)
                    for other in variant.fleets
                    if fleet.share > 0 and other.fleet_id != fleet.fleet_id and other.share > 0
                    for s in own[other.fleet_id]
                )
                backends[name] = Backend(
                    name=name,
                    endpoint=record.endpoint,
                    variant=variant.variant,
                    fleet_id=fleet.fleet_id,
                    balance=balance_for(fleet.routing_strategy or variant.routing_strategy),
                    servers=own[fleet.fleet_id] + backups,
                    capture=(captures or {}).get(fleet.fleet_id),
                )
    return DesiredState(
        backends=tuple(sorted(backends.values(), key=lambda b: b.name)),
        slots=tuple(slots),
        picks=tuple(picks),
        versions=versions,
    )
