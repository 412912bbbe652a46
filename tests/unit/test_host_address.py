"""Where instances listen: loopback only, unless the agent's host is on a private network between
hosts (GREENSHIFT_HOST_NETWORK_PRIVATE), and never a wildcard either way."""

from __future__ import annotations

import click
import pytest

from greenshift.cli.hosts import _host_address
from greenshift.fleet.processes import instance_address


@pytest.mark.parametrize(
    ("configured", "private", "listens"),
    [
        ("127.0.0.3", False, "127.0.0.3"),
        ("10.231.0.2", False, "127.0.0.1"),
        ("0.0.0.0", False, "127.0.0.1"),
        ("10.231.0.2", True, "10.231.0.2"),
        ("0.0.0.0", True, "127.0.0.1"),
        ("::", True, "127.0.0.1"),
        ("224.0.0.1", True, "127.0.0.1"),
        ("host.example", True, "127.0.0.1"),
    ],
)
def test_instances_listen_beyond_loopback_only_on_a_private_hosts_own_address(
    configured: str, private: bool, listens: str
) -> None:
    assert instance_address(configured, private) == listens


def test_the_agent_refuses_an_address_its_instances_would_not_listen_on() -> None:
    assert _host_address("127.0.0.4", False) == "127.0.0.4"
    assert _host_address("10.231.0.2", True) == "10.231.0.2"
    with pytest.raises(click.BadParameter, match="GREENSHIFT_HOST_NETWORK_PRIVATE=true"):
        _host_address("10.231.0.2", False)
    with pytest.raises(click.BadParameter, match="not this host's own"):
        _host_address("0.0.0.0", True)
    with pytest.raises(click.BadParameter, match="not an IP address"):
        _host_address("host.example", True)
