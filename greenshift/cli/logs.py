"""`greenshift logs ENDPOINT`: an endpoint's instance output, read as any user would read it,
through boto3's `logs` client (CloudWatch Logs FilterLogEvents on the control API)."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError

from greenshift.cli.interrupts import Interrupts
from greenshift.cli.options import api_options
from greenshift.client import GreenshiftClient
from greenshift.logs.model import group_name
from greenshift.settings import Settings

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+)([smhdw])")


def parse_duration(text: str) -> float:
    """Seconds in `30s`, `10m`, `2h`, `1d`, `1w`, or combinations such as `1h30m`."""
    value = text.strip().lower()
    parts = _DURATION.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise click.BadParameter(f"{text!r} is not a duration such as 30s, 10m, 2h or 1d.")
    return float(sum(int(n) * _UNITS[u] for n, u in parts))


def format_event(event: dict[str, Any]) -> str:
    """`<UTC time> <stream> <message>`, as `aws logs tail` prints."""
    when = datetime.fromtimestamp(event["timestamp"] / 1000, UTC)
    return f"{when.isoformat(timespec='milliseconds')} {event['logStreamName']} {event['message']}"


class Tail:
    """The new events of repeated reads: each read starts at the newest timestamp printed, and
    the events already printed at exactly that millisecond are skipped (startTime is
    inclusive), so nothing is printed twice and nothing between two reads is missed."""

    def __init__(self, start_ms: int | None) -> None:
        self.start_ms = start_ms
        self._at_start: set[str] = set()

    def fresh(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = [e for e in events if e["eventId"] not in self._at_start]
        if out:
            newest = max(e["timestamp"] for e in out)
            if newest != self.start_ms:
                self._at_start = set()
            self.start_ms = newest
            self._at_start |= {e["eventId"] for e in out if e["timestamp"] == newest}
        return out


def _read(client: Any, request: dict[str, Any], ctrl_c: Interrupts) -> Iterator[dict[str, Any]]:
    """The events of every page, until the last or until Ctrl-C."""
    token = None
    while not ctrl_c.requested:
        page = client.filter_log_events(**request, **({"nextToken": token} if token else {}))
        yield from page["events"]
        token = page.get("nextToken")
        if not token:
            return


@click.command("logs")
@click.argument("endpoint")
@click.option("--variant", help="only the instances of this production variant")
@click.option("--since", help="how far back to start: 30s, 10m, 2h, 1d (default: all kept)")
@click.option("--follow", is_flag=True, help="keep printing new lines until Ctrl-C")
@click.option("--interval", type=float, default=1.0, show_default=True, help="poll seconds")
@api_options
def logs_command(
    endpoint: str,
    variant: str | None,
    since: str | None,
    follow: bool,
    interval: float,
    settings: Settings,
) -> None:
    """Print the output of ENDPOINT's model instances (log group
    /aws/sagemaker/Endpoints/ENDPOINT, one stream VARIANT/INSTANCE per instance)."""
    start = None if since is None else int((time.time() - parse_duration(since)) * 1000)
    client = GreenshiftClient(settings).boto("logs")
    request: dict[str, Any] = {"logGroupName": group_name(endpoint)}
    if variant:
        request["logStreamNamePrefix"] = f"{variant}/"
    tail = Tail(start)
    said_waiting = False
    with Interrupts() as ctrl_c:  # interrupts.py: why not KeyboardInterrupt
        try:
            while not ctrl_c.requested:
                window = {} if tail.start_ms is None else {"startTime": tail.start_ms}
                events = _events(client, {**request, **window}, ctrl_c, follow)
                if events is None and not said_waiting:
                    click.echo(f"no logs for {endpoint} yet; waiting (Ctrl-C to stop)", err=True)
                    said_waiting = True
                for event in tail.fresh(events or []):
                    click.echo(format_event(event))
                sys.stdout.flush()
                if not follow or ctrl_c.wait(interval):
                    return
        except KeyboardInterrupt:  # the second Ctrl-C, a read stuck on the network
            return


def _events(
    client: Any, request: dict[str, Any], ctrl_c: Interrupts, follow: bool
) -> list[dict[str, Any]] | None:
    """One read's events; None: no such log group yet, which `follow` waits for. Any other
    error ends the command (exit 2)."""
    try:
        return list(_read(client, request, ctrl_c))
    except ClientError as exc:
        error = exc.response["Error"]
        if follow and error.get("Code") == "ResourceNotFoundException":
            return None
        click.echo(f"error: {error.get('Code')}: {error.get('Message')}", err=True)
        sys.exit(2)
    except BotoCoreError as exc:
        click.echo(f"error: ConnectionError: cannot reach Greenshift: {exc}", err=True)
        sys.exit(2)
