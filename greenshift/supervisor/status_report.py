"""What `greenshift status` reports: each component of the stack, its pid, whether it runs and
whether it answers, read from the home's state without the supervisor's help."""

from __future__ import annotations

from typing import Any

from greenshift.heartbeat import problem_of
from greenshift.settings import Settings
from greenshift.supervisor.components import components
from greenshift.supervisor.processes import pid_alive
from greenshift.supervisor.state import read_state, supervisor_alive


def component_health(settings: Settings) -> dict[str, dict[str, Any]]:
    """What `greenshift status` reports: each component, its pid and whether it answers."""
    state = read_state(settings) or {"components": {}}
    checks = {c.name: c.health for c in components(settings)}
    # Without its supervisor nothing is healthy: no one restarts what dies or stops it all.
    supervised = supervisor_alive(settings)
    report: dict[str, dict[str, Any]] = {}
    for name, check in checks.items():
        info = state["components"].get(name, {})
        pid = info.get("pid")
        report[name] = {
            "pid": pid,
            "running": pid_alive(pid),
            "healthy": bool(supervised and pid_alive(pid) and check()),
            "supervised": supervised,
            "restarts": info.get("restarts", 0),
            "problem": problem_of(settings, name),  # what it says is wrong, if anything
        }
    return report
