"""Heartbeat files: how a process without a port tells `greenshift up` it is alive.

The worker and the metrics process touch `<home>/run/<name>.alive` every few seconds; the
supervisor counts one fresh if it was touched in the last few seconds. Kept out of the supervisor
package so the processes it watches need not import it.
"""

from __future__ import annotations

import time
from pathlib import Path

from greenshift.settings import Settings


def heartbeat_path(settings: Settings, name: str) -> Path:
    return settings.home_dir / "run" / f"{name}.alive"


def heartbeat_fresh(settings: Settings, name: str, max_age: float = 10.0) -> bool:
    """Processes without a port touch `<home>/run/<name>.alive` every few seconds."""
    path = heartbeat_path(settings, name)
    try:
        return time.time() - path.stat().st_mtime < max_age
    except FileNotFoundError:
        return False


def touch_heartbeat(settings: Settings, name: str) -> None:
    """Called by the worker and the metrics process every few seconds."""
    path = heartbeat_path(settings, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
