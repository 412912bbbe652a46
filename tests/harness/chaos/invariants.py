"""What must hold once a deployment has settled, whatever was killed during it.

`collect` reads the facts from the machine (registry, /proc, HAProxy's runtime API); `violations`
is the pure judgement over them, so it is tested on hand-made snapshots.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from greenshift.dataplane.desired import backend_name, haproxy_id
from greenshift.dataplane.runtime import RuntimeApi
from greenshift.fleet.processes import SERVER_MODULE
from greenshift.ports import ProvisionFailed
from greenshift.registry.api import Registry
from greenshift.settings import Settings
from greenshift.status import InstanceState
from tests.harness.chaos.killers import cmdline, haproxy_pids

SETTLED = {"InService", "Failed", "UpdateRollbackFailed"}


@dataclass(frozen=True)
class Snapshot:
    status: str
    config_name: str  # the endpoint's EndpointConfigName in the registry
    expected_config: str  # the deployment's target, or the old config when it must roll back
    expected_count: int  # instances the config asks for
    fleets: dict[str, tuple[str, int]]  # serving (non-retired) fleet id -> (config, desired count)
    instances: dict[str, tuple[str, str]]  # instance id -> (fleet id, state), every fleet
    processes: set[str]  # instance ids with a live model-server process or container (this home)
    servers: dict[str, set[str]] = field(default_factory=dict)  # backend -> enabled servers
    duplicates: tuple[str, ...] = ()  # instance ids with more than one live process
    haproxy_groups: int = 1  # HAProxy process groups (master + workers) running this config


def violations(s: Snapshot) -> list[str]:
    found: list[str] = []
    if s.status not in SETTLED:
        found.append(f"endpoint still {s.status}")
    if s.status != "InService":
        found.append(f"endpoint ended {s.status}")
    if s.config_name != s.expected_config:
        found.append(f"endpoint on {s.config_name}, expected {s.expected_config}")
    for fleet_id, (config, _) in s.fleets.items():
        if config != s.config_name:
            found.append(f"fleet {fleet_id} of {config} still serving")
    desired = sum(count for _, count in s.fleets.values())
    if desired != s.expected_count:
        found.append(f"serving fleets desire {desired} instances, config asks {s.expected_count}")
    in_service = {
        iid for iid, (fleet, state) in s.instances.items() if state == InstanceState.IN_SERVICE
    }
    serving = {iid for iid in in_service if s.instances[iid][0] in s.fleets}
    if len(serving) != s.expected_count:
        found.append(f"{len(serving)} InService instances, expected {s.expected_count}")
    if stray := in_service - serving:
        found.append(f"InService instances of retired fleets: {sorted(stray)}")
    if orphans := s.processes - serving:
        found.append(f"orphaned model-server processes: {sorted(orphans)}")
    if missing := serving - s.processes:
        found.append(f"InService instances with no process: {sorted(missing)}")
    routed: set[str] = set()
    for fleet_id in {fleet for fleet, _ in s.instances.values()} | set(s.fleets):
        routed |= s.servers.get(backend_name(fleet_id), set())
    want = {haproxy_id(iid) for iid in serving}
    if routed != want:
        extra = sorted(routed - want)
        lacking = sorted(want - routed)
        found.append(f"HAProxy disagrees with the registry: extra {extra}, missing {lacking}")
    if s.duplicates:
        found.append(f"more than one process for instances {sorted(s.duplicates)}")
    if s.haproxy_groups != 1:
        found.append(f"{s.haproxy_groups} HAProxy process groups serve this stack, expected 1")
    return found


def model_server_instances(settings: Settings) -> Counter[str]:
    """Instance ids of live model-server processes of this home (their working directory is the
    instance's folder under `<home>/instances/`)."""
    home = str(settings.home_dir)
    found: Counter[str] = Counter()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = cmdline(int(entry.name))
        if SERVER_MODULE not in argv:
            continue
        try:
            if not os.readlink(entry / "cwd").startswith(home):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X") and "--instance-id" in argv:
            found[argv[argv.index("--instance-id") + 1]] += 1
    return found


def container_instances(settings: Settings) -> Counter[str]:
    """Instance ids of running containers of this home (by their labels); none without an
    engine."""
    from greenshift.fleet.containers import LABEL_INSTANCE, DockerRuntime

    runtime = DockerRuntime(settings.home_dir)
    found: Counter[str] = Counter()
    try:
        for container in runtime.ours():
            if container.status == "running":
                found[container.labels.get(LABEL_INSTANCE, "")] += 1
    except ProvisionFailed:
        return found
    finally:
        runtime.close()
    return found


def haproxy_servers(settings: Settings) -> dict[str, set[str]]:
    """Enabled (not in maintenance) servers of each backend, from HAProxy's runtime API."""
    runtime = RuntimeApi(settings.home_dir / "dataplane" / "admin.sock")
    servers: dict[str, set[str]] = {}
    for server in runtime.servers():
        if not server.admin_maint:
            servers.setdefault(server.backend, set()).add(server.name)
    return servers


def collect(
    settings: Settings,
    registry: Registry,
    endpoint: str,
    expected_config: str,
    expected_count: int,
) -> Snapshot:
    record = registry.get_endpoint(endpoint)
    fleets = registry.list_fleets(endpoint)
    instances = registry.list_instances(endpoint=endpoint)
    processes = model_server_instances(settings) + container_instances(settings)
    return Snapshot(
        status=str(getattr(record.status, "value", record.status)) if record else "missing",
        config_name=(record.config_name or "") if record else "",
        expected_config=expected_config,
        expected_count=expected_count,
        fleets={f.fleet_id: (f.config_name, f.desired_count) for f in fleets if not f.retired},
        instances={i.instance_id: (i.fleet_id, i.state) for i in instances},
        processes=set(processes),
        duplicates=tuple(iid for iid, n in processes.items() if n > 1),
        servers=haproxy_servers(settings),
        haproxy_groups=len({os.getpgid(pid) for pid in haproxy_pids(settings)}),
    )
