"""The home directory (`--home`, GREENSHIFT_HOME): made usable and private before `up` writes
anything to it."""

from __future__ import annotations

import os
from pathlib import Path

from greenshift.settings import Settings


class HomeError(RuntimeError):
    """The home cannot be created or written (read-only, not a directory, no permission)."""


# Files in the home that hold everything (models' specs, endpoints, workflow histories).
PRIVATE_FILES = ("registry.db", "temporal.db")


def prepare_home(settings: Settings) -> Path:
    """Make sure the home is usable and private before anything is written to it: 0700, its
    databases (and their -wal/-shm files) 0600, a write that works. Raises HomeError with a
    sentence, never a traceback, when the home is read-only or otherwise unusable."""
    path = settings.home.expanduser()
    try:
        home = settings.home_dir
        info = home.stat()
        # Tighten a home of ours that others can read; never a shared directory (sticky, /tmp).
        if info.st_uid == os.getuid() and info.st_mode & 0o077 and not info.st_mode & 0o1000:
            home.chmod(0o700)
        for name in PRIVATE_FILES:
            for suffix in ("", "-wal", "-shm", "-journal"):
                private = home / f"{name}{suffix}"
                if private.exists() and private.stat().st_mode & 0o077:
                    private.chmod(0o600)
        run = home / "run"
        run.mkdir(mode=0o700, exist_ok=True)
        probe = run / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise HomeError(
            f"Greenshift cannot use {path} as its home ({reason}). Choose a writable directory "
            "with --home or GREENSHIFT_HOME."
        ) from None
    return home


def home_path(settings: Settings) -> Path:
    return settings.home_dir
