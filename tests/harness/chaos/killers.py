"""Find the processes of one component of a `greenshift up` stack and SIGKILL them, or hang
them (SIGSTOP: alive, holding its ports and its pid, answering nothing), or terminate the
endpoint's workflow with the real `temporal` CLI.

Pids come from where the stack itself records them (the supervisor's `run/up.json`, the registry's
instance records) or, for HAProxy, whose master and worker the router controller starts, from
/proc by the config path under the stack's home: never by a broad name, so a parallel stack on
the same machine is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from greenshift import binaries
from greenshift.registry.api import Registry
from greenshift.settings import Settings
from greenshift.status import InstanceState
from greenshift.supervisor.state import read_state

SUPERVISED = ("worker", "api", "dataplane", "temporal", "metrics")
INSTANCE_KILLS = ("old-instance", "new-instance")
COMPONENTS = (*SUPERVISED, "haproxy", *INSTANCE_KILLS)
WORKFLOW = "workflow"  # the fault `terminate`: the endpoint's workflow, not a process


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
        if i.fleet_id in fleets and i.pid and i.state == InstanceState.IN_SERVICE and _live(i.pid)
    ]


def kill(pids: list[int]) -> list[int]:
    """SIGKILL each pid; returns the ones that existed."""
    killed = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed


def hang(pids: list[int]) -> dict[int, list[str]]:
    """SIGSTOP each pid; returns the ones stopped with their command lines (for `release`)."""
    stopped: dict[int, list[str]] = {}
    for pid in pids:
        argv = cmdline(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
            stopped[pid] = argv
    return stopped


def still_hung(stopped: dict[int, list[str]]) -> list[int]:
    """Those still stopped (state T) and still running the same command: nobody replaced them."""
    hung = []
    for pid, argv in stopped.items():
        try:
            stat = (Path("/proc") / str(pid) / "stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[-1].split()[0] in ("T", "t") and cmdline(pid) == argv:
            hung.append(pid)
    return hung


def release(stopped: dict[int, list[str]]) -> list[int]:
    """SIGCONT the stopped pids that still run the command they ran when stopped (a pid reused
    by another process is left alone); returns those continued."""
    continued = []
    for pid, argv in stopped.items():
        if argv and cmdline(pid) == argv:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
                continued.append(pid)
    return continued


def terminate_workflow(settings: Settings, workflow_id: str, reason: str) -> str:
    """`temporal workflow terminate` against the stack's Temporal, as an operator runs it;
    returns its output (raises CalledProcessError when the CLI refuses)."""
    done = subprocess.run(
        [
            binaries.temporal_cli(),
            "workflow",
            "terminate",
            "--workflow-id",
            workflow_id,
            "--reason",
            reason,
            "--address",
            settings.temporal_target,
            "--namespace",
            settings.temporal_namespace,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout + done.stderr
