"""`greenshift agent` (one host's fleet agent) and `greenshift hosts` (list, drain)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from datetime import UTC, datetime

import click

from greenshift.cli.options import stack_options
from greenshift.hosts.records import state_of
from greenshift.hosts.store import HostStore
from greenshift.settings import Settings


def _host_address(address: str, private_network: bool) -> str:
    """Instances listen on the host's address, and instances only ever listen on loopback
    (127.0.0.0/8 or ::1) unless the host is on a private network between hosts
    (GREENSHIFT_HOST_NETWORK_PRIVATE): anything else is refused here, before a port is opened.
    An agent's instance records carry this address, so it must be the one they listen on."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise click.BadParameter(f"{address} is not an IP address") from None
    if parsed.is_loopback:
        return address
    if private_network:
        if not (parsed.is_unspecified or parsed.is_multicast):
            return address
        raise click.BadParameter(f"{address} is not this host's own (unicast) address")
    raise click.BadParameter(
        f"{address} is not a loopback address (127.0.0.0/8 or ::1); an address on a private "
        "network between the hosts needs GREENSHIFT_HOST_NETWORK_PRIVATE=true"
    )


@click.command("agent")
@stack_options
@click.option("--address", required=True, help="this host's address (loopback: 127.0.0.N)")
@click.option("--vcpus", type=int, default=0, help="vCPUs instances may use (0: unlimited)")
@click.option("--memory-gib", type=float, default=0.0, help="memory for instances (0: unlimited)")
@click.option("--instance-type", "instance_types", multiple=True, help="accept only these types")
@click.option("--heartbeat-seconds", type=float, default=1.0, show_default=True)
def agent_command(
    settings: Settings,
    address: str,
    vcpus: int,
    memory_gib: float,
    instance_types: tuple[str, ...],
    heartbeat_seconds: float,
) -> None:
    """Run the fleet agent of one host: register it, heartbeat, hold its model instances."""
    from greenshift.hosts.agent_main import run_agent

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    host = _host_address(address, settings.host_network_private)
    host_settings = settings.model_copy(update={"host": host})
    asyncio.run(
        run_agent(
            host_settings,
            vcpus=vcpus,
            memory_gib=memory_gib,
            instance_types=list(instance_types),
            heartbeat_seconds=heartbeat_seconds,
        )
    )


@click.group("hosts", invoke_without_command=True)
@stack_options
@click.option("--lost-after", type=float, default=5.0, show_default=True, help="seconds")
@click.pass_context
def hosts_command(ctx: click.Context, settings: Settings, lost_after: float) -> None:
    """List the hosts: capacity, instances held, health."""
    if ctx.invoked_subcommand is not None:
        return
    from greenshift.registry.sql import SqlRegistry

    store = HostStore(settings.registry_url)
    registry = SqlRegistry(settings.registry_url, arn_for=settings.arn)
    try:
        now = datetime.now(UTC)
        click.echo(f"{'HOST':<16} {'STATE':<9} {'VCPUS':>5} {'MEM GIB':>7} {'GPUS':>4} INSTANCES")
        for host in store.list():
            held = [r for r in registry.list_instances(host=host.address)]
            click.echo(
                f"{host.address:<16} {state_of(host, now, lost_after):<9} "
                f"{host.vcpus or '-':>5} {host.memory_gib or '-':>7} {host.gpus:>4} {len(held)}"
            )
    finally:
        store.close()
        registry.close()


@hosts_command.command("drain")
@stack_options
@click.argument("address")
def drain_command(settings: Settings, address: str) -> None:
    """Move every instance off HOST (replacement first, then the old one out of rotation, then
    stopped); refused, with nothing changed, when the other hosts cannot hold them."""
    from greenshift.errors import GreenshiftError
    from greenshift.hosts.drain import drain
    from greenshift.registry.sql import SqlRegistry

    store = HostStore(settings.registry_url)
    registry = SqlRegistry(settings.registry_url, arn_for=settings.arn)
    try:
        moved = asyncio.run(drain(settings, registry, store, address))
    except GreenshiftError as error:
        raise click.ClickException(f"{error.code}: {error.message}") from None
    finally:
        store.close()
        registry.close()
    click.echo(f"{address} drained: {moved} instance(s) moved to the other hosts.")
