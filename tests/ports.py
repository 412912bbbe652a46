"""Ports for the servers a test starts: chosen below the kernel's ephemeral range.

A port found free by binding port 0 comes from the ephemeral range, which every process on the
machine draws from as well: the Temporal dev server opens several ports of its own there, and
every outgoing connection takes one as its source port. Between a test choosing a port and its
server binding it, one of those can take it (seen in CI: the dev server held the runtime port
the stack had chosen, so its HAProxy could never start). Below that range nothing is handed out
by the kernel, so a port is only ever taken by a test that chose it: each is checked bindable,
and not handed out again while it is among the last few hundred given.
"""

from __future__ import annotations

import random
import socket
from collections import deque
from pathlib import Path

# Instances of a stack take ports from 21000 up (tests/e2e/stack.py): listeners stay below.
LOW, HIGH = 10_000, 20_999
_given: deque[int] = deque(maxlen=512)  # the ports given lately, not given again


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port() -> int:
    """A port on 127.0.0.1 that is free now, outside the ephemeral range, and not given lately
    to another caller of this process."""
    high = min(HIGH, _ephemeral_low() - 1)
    for _ in range(2_000):
        port = random.randint(LOW, high)
        if port in _given:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.append(port)
        return port
    raise RuntimeError(f"no free port between {LOW} and {high}")
