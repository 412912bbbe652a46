"""`<home>/run/up.json`: what the running `greenshift up` records (its pid, its URLs, each
component's pid, restarts and command), for `greenshift status`, for a second `up` that finds the
home locked, and for the `up` that takes over after a supervisor died."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from greenshift.settings import Settings
from greenshift.supervisor.components import TEMPORAL_HOST, Component


def state_path(settings: Settings) -> Path:
    return settings.home_dir / "run" / "up.json"


def write_state(settings: Settings, stack: Sequence[Component]) -> None:
    state = {
        "pid": os.getpid(),
        "home": str(settings.home_dir),
        "api_url": settings.api_url,
        "runtime_url": settings.runtime_url,
        "temporal": settings.temporal_target,
        "ui_url": f"http://{TEMPORAL_HOST}:{settings.ui_port}"
        if settings.temporal_address is None
        else None,
        "components": {
            c.name: {"pid": c.pid, "restarts": c.restarts, "argv": c.argv} for c in stack
        },
    }
    state_path(settings).write_text(json.dumps(state, indent=2))


def remove_state(settings: Settings) -> None:
    with contextlib.suppress(FileNotFoundError):
        state_path(settings).unlink()


def read_state(settings: Settings) -> dict[str, Any] | None:
    path = state_path(settings)
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return state


def supervisor_alive(settings: Settings) -> bool:
    """Whether the `up` recorded in the home's state still runs (its pid runs `greenshift up`)."""
    state = read_state(settings)
    pid = state.get("pid") if state else None
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"up" in cmdline
