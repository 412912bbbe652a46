"""Hosts on one machine for the end-to-end and chaos tests: `greenshift agent`s on their own
loopback addresses (127.0.0.2, .3, ...), each with a home of its own, beside a stack whose worker
holds no agent. Killing one is the whole host: its agent and every instance it runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from greenshift.hosts.store import HostStore
from greenshift.registry.sql import SqlRegistry
from tests.e2e.stack import Stack


class Agents:
    def __init__(self, stack: Stack, root: Path) -> None:
        self.stack = stack
        self.root = root
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def home(self, address: str) -> Path:
        return self.root / f"host-{address}"

    def start(self, address: str) -> None:
        env = {
            **self.stack.env(),
            "GREENSHIFT_HOME": str(self.home(address)),
            "GREENSHIFT_DATABASE_URL": self.stack.settings.registry_url,
        }
        log = (self.root / f"agent-{address}.log").open("ab")
        with log:
            self.processes[address] = subprocess.Popen(
                [sys.executable, "-m", "greenshift", "agent", "--address", address],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, address: str, registry: SqlRegistry) -> None:
        """SIGKILL the host: its agent and every instance it runs."""
        process = self.processes.pop(address)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        for record in registry.list_instances(host=address):
            if record.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(record.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.processes.clear()


def wait_hosts(stack: Stack, n: int) -> None:
    """Until `n` agents have registered their hosts (60 s at most)."""
    store = HostStore(stack.settings.registry_url)
    try:
        deadline = time.monotonic() + 60
        while len(store.list()) < n:
            assert time.monotonic() < deadline, "the agents did not register in 60 s"
            time.sleep(0.2)
    finally:
        store.close()


def spread(registry: SqlRegistry, endpoint: str, config: str) -> Counter[str]:
    """Host -> in-service instances of `endpoint`'s fleets deployed from `config`."""
    fleets = {f.fleet_id for f in registry.list_fleets(endpoint) if f.config_name == config}
    return Counter(
        r.host
        for r in registry.list_instances(endpoint=endpoint)
        if r.fleet_id in fleets and r.state == "InService"
    )
