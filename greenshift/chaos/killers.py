"""Find the processes of one component of a `greenshift up` stack and SIGKILL them.

Pids come from where the stack itself records them (the supervisor's `run/up.json`, the registry's
instance records) or, for HAProxy, whose master and worker the router controller starts, from
/proc by the config path under the stack's home: never by a broad name, so a parallel stack on
the same machine is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from greenshift.registry.api import Registry
from greenshift.settings import Settings
from greenshift.supervisor import read_state

SUPERVISED = ("worker", "api", "dataplane", "temporal")
INSTANCE_KILLS = ("old-instance", "new-instance")
COMPONENTS = (*SUPERVISED, "haproxy", *INSTANCE_KILLS)


def cmdline(pid: int) -> list[str]:
    try:
        raw = (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _live(pid: int) -> bool:
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def haproxy_pids(settings: Settings) -> list[int]:
    """HAProxy master and workers running this stack's config file."""
    config = str(settings.home_dir / "dataplane" / "haproxy.cfg")
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            argv = cmdline(int(entry.name))
            if argv and "haproxy" in Path(argv[0]).name and config in argv:
                found.append(int(entry.name))
    return [pid for pid in found if _live(pid)]


def supervised_pid(settings: Settings, component: str) -> int | None:
    state = read_state(settings) or {}
    pid = state.get("components", {}).get(component, {}).get("pid")
    return int(pid) if pid and _live(int(pid)) else None


def instance_pids(registry: Registry, endpoint: str, config_name: str) -> list[int]:
    """Pids of running instances of the endpoint's fleets of `config_name`."""
    fleets = {f.fleet_id for f in registry.list_fleets(endpoint) if f.config_name == config_name}
    return [
        i.pid
        for i in registry.list_instances(endpoint=endpoint)
        if i.fleet_id in fleets and i.pid and i.state == "InService" and _live(i.pid)
    ]


def kill(pids: list[int]) -> list[int]:
    """SIGKILL each pid; returns the ones that existed."""
    killed = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed
