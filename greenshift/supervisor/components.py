"""The stack `greenshift up` runs: each component's command, how to tell it answers, and the
ports they open."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from greenshift import binaries
from greenshift.heartbeat import heartbeat_fresh, problem_of
from greenshift.settings import Settings
from greenshift.supervisor.probes import http_ok, port_open

HealthCheck = Callable[[], bool]

# The embedded Temporal dev server (and its UI) listen here only.
TEMPORAL_HOST = "127.0.0.1"

# The embedded Temporal keeps its SQLite file in WAL mode with synchronous=NORMAL, not SQLite's
# defaults (a rollback journal, synchronous=FULL: several fsyncs per workflow task). Measured
# with bench/workflow_bench.py --temporal-db file (docs/benchmarks.md, "Workflows"): the dev
# server's CPU per deployment falls by about a third and one deployment's overhead from ~0.19 s
# to ~0.13 s, as with an in-memory server. The trade: a power cut or a kernel crash (not a
# process crash) may lose the last transactions; the file stays consistent, and what a lost
# workflow task did is done again when it runs again (every activity is idempotent, and the
# orphan reconciler settles an endpoint whose workflow start was lost). For FULL durability
# run Temporal yourself and point GREENSHIFT_TEMPORAL_ADDRESS at it.
TEMPORAL_SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


def temporal_sqlite_args() -> list[str]:
    """The dev server's `--sqlite-pragma` flags (also used by the benchmark's file mode)."""
    return [arg for pragma in TEMPORAL_SQLITE_PRAGMAS for arg in ("--sqlite-pragma", pragma)]


@dataclass
class Component:
    """A process `up` runs and watches."""

    name: str
    argv: list[str]
    health: HealthCheck
    ready_timeout: float = 60.0
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_restart_at: float = 0.0
    log: IO[bytes] | None = field(default=None, repr=False)
    # Since when a running process has failed its health check (None: it answers).
    unhealthy_since: float | None = None
    last_check: float = 0.0
    started_at: float = 0.0
    answered: bool = False  # since its last start: until then it has ready_timeout to answer

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def components(settings: Settings) -> list[Component]:
    """The stack in start order. Temporal is left out when an existing one is configured."""
    py = sys.executable
    host = settings.host
    stack: list[Component] = []
    if settings.temporal_address is None:
        stack.append(
            Component(
                name="temporal",
                argv=[
                    binaries.temporal_cli(),
                    "server",
                    "start-dev",
                    "--db-filename",
                    str(settings.home_dir / "temporal.db"),
                    *temporal_sqlite_args(),
                    # Loopback whatever --host says: Temporal has no authentication here, and
                    # a workflow started on it is a deployment (issue 14 item 1). Production
                    # Temporal with mTLS: docs/security.md.
                    "--ip",
                    TEMPORAL_HOST,
                    "--port",
                    str(settings.temporal_port),
                    "--ui-port",
                    str(settings.ui_port),
                    "--ui-disable-news-fetch",
                    "--log-level",
                    "warn",
                ],
                health=lambda: port_open(TEMPORAL_HOST, settings.temporal_port),
                ready_timeout=60,
            )
        )
    stack += [
        Component(
            name="api",
            argv=[py, "-m", "greenshift.api"],
            health=lambda: http_ok(
                settings.api_url + "/",
                method="POST",
                headers={
                    "X-Amz-Target": "SageMaker.ListEndpoints",
                    "Content-Type": "application/x-amz-json-1.1",
                },
                content=b"{}",
            ),
        ),
        Component(
            name="dataplane",
            argv=[py, "-m", "greenshift.dataplane"],
            # Its own heartbeat too: the port alone could be another program's.
            health=lambda: (
                heartbeat_fresh(settings, "dataplane")
                and problem_of(settings, "dataplane") is None
                and port_open(host, settings.runtime_port)
            ),
        ),
        Component(
            name="metrics",
            argv=[py, "-m", "greenshift.metrics"],
            health=lambda: heartbeat_fresh(settings, "metrics"),
        ),
        Component(
            name="worker",
            argv=[py, "-m", "worker"],
            health=lambda: heartbeat_fresh(settings, "worker"),
        ),
    ]
    stack += [_extra_worker(settings, n) for n in range(2, settings.workers + 1)]
    return stack


def _extra_worker(settings: Settings, n: int) -> Component:
    """Worker n of `--workers N`: workflows and activities on the shared queue, no agent (one
    agent per host: the first worker's)."""
    name = f"worker-{n}"
    env = ["env", "GREENSHIFT_WORKER_AGENT=false", f"GREENSHIFT_WORKER_NAME={name}"]
    return Component(
        name=name,
        argv=[*env, sys.executable, "-m", "worker"],
        health=lambda: heartbeat_fresh(settings, name),
    )


def stack_ports(settings: Settings) -> dict[str, tuple[int, str]]:
    """Every port `up` opens, with the flag that moves it (each also GREENSHIFT_<NAME>_PORT)."""
    ports = {
        "api": (settings.api_port, "--api-port"),
        "runtime": (settings.runtime_port, "--runtime-port"),
        "stats": (settings.stats_port, "--stats-port"),
    }
    if settings.temporal_address is None:
        ports["temporal"] = (settings.temporal_port, "--temporal-port")
        ports["ui"] = (settings.ui_port, "--ui-port")
    return ports
