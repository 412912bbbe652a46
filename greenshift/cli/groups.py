"""`greenshift rollout-group start|watch|abort|history`: one deployment over several endpoints,
through the control API's Greenshift.*RolloutGroup operations."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from greenshift.cli.options import api_options
from greenshift.client import GreenshiftApiError, GreenshiftClient
from greenshift.groups.model import GroupStatus
from greenshift.settings import Settings

SETTLED = {GroupStatus.SUCCEEDED.value, GroupStatus.ROLLED_BACK.value}


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@contextmanager
def _client(settings: Settings) -> Iterator[GreenshiftClient]:
    client = GreenshiftClient(settings)
    try:
        yield client
    finally:
        client.close()


def _call(client: GreenshiftClient, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        return client.call(operation, params)
    except GreenshiftApiError as exc:
        _fail(f"{exc.code}: {exc.message}", code=2)


def summary(view: dict[str, Any]) -> str:
    """One line: the group's status, wave and each endpoint's status. Pure."""
    endpoints = ", ".join(f"{e['EndpointName']} {e['Status']}" for e in view.get("Endpoints", []))
    reason = f" ({view['Reason']})" if view.get("Reason") else ""
    return (
        f"{view['RolloutGroupName']}: {view['Status']}{reason}, wave "
        f"{view.get('Wave', 0)}/{view.get('WaveCount', 0)}: {endpoints}"
    )


def render_history(view: dict[str, Any]) -> str:
    """The group's events with their offsets from the first. Pure."""
    events = view.get("Events", [])
    if not events:
        return summary(view)
    start = _epoch(events[0]["Time"])
    lines = [summary(view), ""]
    for event in events:
        who = f" [{event['EndpointName']}]" if event.get("EndpointName") else ""
        offset = _epoch(event["Time"]) - start
        lines.append(f"  +{offset:8.1f}s  {event['Type']:<20} {event['Message']}{who}")
    return "\n".join(lines)


def _epoch(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()


def _watch(client: GreenshiftClient, name: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    printed = ""
    while time.monotonic() < deadline:
        view = _call(client, "DescribeRolloutGroup", {"RolloutGroupName": name})
        line = summary(view)
        if line != printed:
            click.echo(line)
            printed = line
        if view["Status"] in SETTLED or view["Status"] == GroupStatus.ROLLBACK_FAILED.value:
            return 0 if view["Status"] == GroupStatus.SUCCEEDED.value else 1
        time.sleep(1.0)
    click.echo(f"Still running after {timeout:.0f}s.")
    return 2


@click.group("rollout-group")
def rollout_group_command() -> None:
    """Deploy several endpoints as one: waves of UpdateEndpoint requests, rolled back together."""


@rollout_group_command.command("start")
@click.argument("group_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--watch", "watch_it", is_flag=True, help="then watch it until it ends")
@api_options
def start_command(group_file: Path, watch_it: bool, settings: Settings) -> None:
    """Start the group in GROUP_FILE (the RolloutGroup JSON, see the README)."""
    try:
        doc = json.loads(group_file.read_text())
    except ValueError as exc:
        _fail(f"{group_file} is not valid JSON: {exc}", code=2)
    with _client(settings) as client:
        answer = _call(client, "StartRolloutGroup", doc)
        click.echo(f"Started rollout group {answer['RolloutGroupName']} ({answer['WorkflowId']}).")
        code = _watch(client, answer["RolloutGroupName"], timeout=20 * 28_800) if watch_it else 0
    sys.exit(code)


@rollout_group_command.command("watch")
@click.argument("name")
@click.option("--timeout", default=28_800.0, show_default=True, help="give up after seconds")
@api_options
def watch_command(name: str, timeout: float, settings: Settings) -> None:
    """Follow group NAME; exit 0 when it succeeds, 1 when it rolled back, 2 on timeout."""
    with _client(settings) as client:
        code = _watch(client, name, timeout)
    sys.exit(code)


@rollout_group_command.command("abort")
@click.argument("name")
@click.option("--reason", default="", help="kept in the group's events")
@api_options
def abort_command(name: str, reason: str, settings: Settings) -> None:
    """Abort group NAME: every endpoint it changed is moved back, newest first."""
    with _client(settings) as client:
        answer = _call(client, "StopRolloutGroup", {"RolloutGroupName": name, "Reason": reason})
    click.echo(answer["Result"].get("message", "Aborted."))


@rollout_group_command.command("history")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="print the group's view as JSON")
@api_options
def history_command(name: str, as_json: bool, settings: Settings) -> None:
    """Group NAME's events, each endpoint's outcome, and why it ended as it did."""
    with _client(settings) as client:
        view = _call(client, "DescribeRolloutGroup", {"RolloutGroupName": name})
    click.echo(json.dumps(view, indent=2) if as_json else render_history(view))
