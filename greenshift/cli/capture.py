"""`greenshift capture ENDPOINT [--variant V] [--since T]`: the endpoint's captured invocations."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import click
from botocore.exceptions import BotoCoreError, ClientError

from greenshift.cli.options import api_options
from greenshift.client import GreenshiftClient
from greenshift.settings import Settings


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """An ISO time (UTC if it has no zone) or an age such as 90s, 15m, 2h, 1d."""
    if not value:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value[-1] in units and value[:-1].isdigit():
        return (now or datetime.now(UTC)) - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@click.command("capture")
@click.argument("endpoint", required=False)
@click.option("--variant", default=None, help="only this production variant")
@click.option("--since", default=None, help="ISO time or age (30s, 15m, 2h, 1d)")
@click.option(
    "--destination", default=None, help="file:// URI (default: the endpoint's DataCaptureConfig)"
)
@click.option("--json", "as_json", is_flag=True, help="the records as JSON lines")
@click.option(
    "--stats", "show_stats", is_flag=True, help="the data plane's counts: written, lost and how"
)
@api_options
def capture_command(
    endpoint: str | None,
    variant: str | None,
    since: str | None,
    destination: str | None,
    as_json: bool,
    show_stats: bool,
    settings: Settings,
) -> None:
    """ENDPOINT's captured invocations, oldest first: time, variant, the EndpointConfig that
    answered, input -> output. A warning on stderr says when the data plane lost records."""
    from greenshift.capture.reading import (
        destination_dir,
        read_records,
        read_stats,
        render_line,
        render_stats,
    )

    stats = read_stats(settings.home_dir)
    if show_stats:
        if stats is None:
            click.echo("no capture counts yet (the data plane writes them once it captures)")
        for line in render_stats(stats or {}) if stats else []:
            click.echo(line)
        return
    if endpoint is None:
        raise click.UsageError("ENDPOINT is required (or --stats)")
    if stats and stats.get("lost"):
        click.echo(
            f"warning: the data plane lost {stats['lost']} capture records "
            "(greenshift capture --stats)",
            err=True,
        )

    uris = [destination] if destination else _destinations(endpoint, settings)
    if not uris:
        click.echo(f"error: {endpoint} has no DataCaptureConfig", err=True)
        sys.exit(2)
    when = parse_since(since)
    for uri in dict.fromkeys(uris):
        for rec in read_records(destination_dir(uri), endpoint, variant, when):
            click.echo(json.dumps(rec) if as_json else render_line(rec))


def _destinations(endpoint: str, settings: Settings) -> list[str]:
    """DestinationS3Uri of the serving config and of a deployment's new one."""
    client = GreenshiftClient(settings)
    sm = client.boto("sagemaker")
    try:
        described = sm.describe_endpoint(EndpointName=endpoint)
        names = [described["EndpointConfigName"]]
        pending = described.get("PendingDeploymentSummary") or {}
        if pending.get("EndpointConfigName"):
            names.append(pending["EndpointConfigName"])
        uris = []
        for name in names:
            config = sm.describe_endpoint_config(EndpointConfigName=name)
            capture = config.get("DataCaptureConfig") or {}
            if capture.get("DestinationS3Uri"):
                uris.append(capture["DestinationS3Uri"])
        return uris
    except (ClientError, BotoCoreError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    finally:
        client.close()
