"""The tests' ports (tests/ports.py) come from below the kernel's ephemeral range, where no
process is handed one by the kernel, and are not handed out twice in a row."""

from __future__ import annotations

import socket

from tests.ports import HIGH, LOW, _ephemeral_low, free_port


def test_ports_are_below_the_ephemeral_range_distinct_and_bindable() -> None:
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    assert all(LOW <= p <= min(HIGH, _ephemeral_low() - 1) for p in ports)
    for port in ports[:20]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
