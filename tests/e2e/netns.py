"""A host beyond loopback for the tests: a Linux network namespace joined to this one by a veth
pair (`ip netns add` + `ip link add ... type veth`), made and removed by the test itself. Needs
root (CAP_NET_ADMIN); `NetworkHost.make()` raises `NetnsUnavailable` where it cannot.

Only the network is separate: the namespace shares the file system (the SQLite registry, the
homes), as a machine with a shared disk would. What crosses the veth: the data plane to the
instances, and the agent to Temporal, through a TCP forwarder on this side's veth address
(the embedded Temporal listens on 127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
from dataclasses import dataclass, field

COMMAND_TIMEOUT = 15


class NetnsUnavailableError(Exception):
    """No network namespaces here (not root, no `ip`, or no CAP_NET_ADMIN)."""


def _ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", *(["netns", "exec", netns, "ip"] if netns else []), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    if done.returncode != 0:
        raise NetnsUnavailableError(f"{' '.join(command)}: {done.stderr.strip()}")


@dataclass
class NetworkHost:
    """Namespace `name`; this side of the veth is `outer`, the namespace's side is `address`."""

    name: str
    outer: str
    address: str
    made: list[str] = field(default_factory=list)

    @classmethod
    def make(cls, tag: int) -> NetworkHost:
        """A /30 of 10.231.0.0/16 chosen by `tag` (e.g. the pid), so parallel runs differ."""
        if os.geteuid() != 0:
            raise NetnsUnavailableError("network namespaces need root")
        block = (tag % 16000) * 4
        third, fourth = divmod(block, 256)
        host = cls(
            name=f"gs-{tag}",
            outer=f"10.231.{third}.{fourth + 1}",
            address=f"10.231.{third}.{fourth + 2}",
        )
        try:
            host._build()
        except Exception:
            host.remove()
            raise
        return host

    @property
    def veth(self) -> str:
        return f"gsv{self.name[3:]}"[:15]

    @property
    def peer(self) -> str:
        return f"gsp{self.name[3:]}"[:15]

    def _build(self) -> None:
        _ip("netns", "add", self.name)
        self.made.append("netns")
        _ip("link", "add", self.veth, "type", "veth", "peer", "name", self.peer)
        self.made.append("veth")
        _ip("link", "set", self.peer, "netns", self.name)
        _ip("addr", "add", f"{self.outer}/30", "dev", self.veth)
        _ip("link", "set", self.veth, "up")
        _ip("addr", "add", f"{self.address}/30", "dev", self.peer, netns=self.name)
        _ip("link", "set", self.peer, "up", netns=self.name)
        _ip("link", "set", "lo", "up", netns=self.name)

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run inside the namespace (`ip netns exec` execs it: the pid is argv's)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def pids(self) -> list[int]:
        done = subprocess.run(
            ["ip", "netns", "pids", self.name],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        return [int(p) for p in done.stdout.split()]

    def remove(self) -> list[int]:
        """Kill whatever still runs in the namespace, delete the veth and the namespace; returns
        the pids that had to be killed (a clean test leaves none)."""
        left = self.pids() if "netns" in self.made else []
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if "veth" in self.made:
            with contextlib.suppress(NetnsUnavailableError):
                _ip("link", "del", self.veth)
        if "netns" in self.made:
            with contextlib.suppress(NetnsUnavailableError):
                _ip("netns", "del", self.name)
        self.made.clear()
        return left


class Forwarder:
    """TCP from `listen` to `target`, both (host, port), on a thread of its own."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.listen = listen
        self.target = target
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None

    def start(self) -> Forwarder:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, *self.listen), self.loop
        )
        self.server = future.result(timeout=10)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def stop(self) -> None:
        async def close() -> None:
            if self.server is not None:
                self.server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
