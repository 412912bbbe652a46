"""Commands for operators of a running Greenshift: start a deployment, watch it live, steer it
(pause / resume / promote / abort), and read its history."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click
from botocore.exceptions import BotoCoreError, ClientError

from greenshift.cli.options import api_options
from greenshift.cli.watching import DeploymentView, render_view, summary_line
from greenshift.client import GreenshiftApiError, GreenshiftClient
from greenshift.settings import Settings

SETTLED = {"InService", "Failed", "UpdateRollbackFailed"}


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _boto_error(exc: ClientError | BotoCoreError) -> NoReturn:
    """An error answer (or no answer) of the SageMaker API: exit 2 with its code and message."""
    if isinstance(exc, ClientError):
        error = exc.response["Error"]
        _fail(f"{error.get('Code')}: {error.get('Message')}", code=2)
    _fail(f"ConnectionError: cannot reach Greenshift: {exc}", code=2)


def _load_json(value: str) -> Any:
    """A JSON document given inline (it starts with `{`) or as a file path."""
    inline = value.lstrip().startswith("{")
    try:
        return json.loads(value if inline else Path(value).read_text())
    except OSError as exc:
        _fail(f"Cannot read {value}: {exc.strerror or exc}.", code=2)
    except json.JSONDecodeError as exc:
        _fail(f"{'The inline JSON' if inline else value} is not valid JSON: {exc}", code=2)


@click.command("update-endpoint")
@click.argument("endpoint")
@click.option("--endpoint-config", "config", required=True, help="the new EndpointConfig")
@click.option("--deployment-config", help="DeploymentConfig: a JSON file, or inline JSON")
@click.option("--retain-all-variant-properties", is_flag=True)
@click.option("--exclude-retained", multiple=True, help="DesiredInstanceCount / DesiredWeight")
@click.option("--retain-deployment-config", is_flag=True)
@click.option("--watch", "watch_it", is_flag=True, help="then watch it live until it settles")
@api_options
def update_endpoint_command(
    endpoint: str,
    config: str,
    deployment_config: str | None,
    retain_all_variant_properties: bool,
    exclude_retained: tuple[str, ...],
    retain_deployment_config: bool,
    watch_it: bool,
    settings: Settings,
) -> None:
    """Start an UpdateEndpoint: ENDPOINT moves to --endpoint-config."""
    client = GreenshiftClient(settings)
    request: dict[str, Any] = {"EndpointName": endpoint, "EndpointConfigName": config}
    if deployment_config:
        request["DeploymentConfig"] = _load_json(deployment_config)
    if retain_all_variant_properties:
        request["RetainAllVariantProperties"] = True
    if exclude_retained:
        request["ExcludeRetainedVariantProperties"] = [
            {"VariantPropertyType": p} for p in exclude_retained
        ]
    if retain_deployment_config:
        request["RetainDeploymentConfig"] = True
    try:
        answer = client.boto("sagemaker").update_endpoint(**request)
    except (ClientError, BotoCoreError) as exc:
        _boto_error(exc)
    click.echo(f"Updating {answer['EndpointArn']} to {config}.")
    if watch_it:
        sys.exit(_watch(client, endpoint, timeout=28_800 + 600, started_after=time.time() - 5))


@click.command("watch")
@click.argument("endpoint")
@click.option("--timeout", default=28_800 + 600, show_default=True, help="give up after seconds")
@api_options
def watch_command(endpoint: str, timeout: float, settings: Settings) -> None:
    """Watch ENDPOINT's deployment live: phase, traffic split, instances, bake countdown, alarms.

    Exits 0 when the deployment succeeds, 1 when it rolled back or failed, 2 when the endpoint
    is unknown or the deployment still runs after --timeout.
    """
    sys.exit(_watch(GreenshiftClient(settings), endpoint, timeout))


def _watch(
    client: GreenshiftClient, endpoint: str, timeout: float, started_after: float = 0.0
) -> int:
    """Follow the deployment until it settles. On a terminal the view redraws in place; into a
    pipe or a log, one line is printed each time the phase, step, traffic or an alarm changes, so
    the progress is still there to read."""
    from rich.console import Console
    from rich.live import Live

    console = Console()
    deadline = time.monotonic() + timeout
    view: DeploymentView | None = None
    live = Live(console=console, refresh_per_second=4) if console.is_terminal else None
    printed: str | None = None
    settled = False
    with live or contextlib.nullcontext():
        while time.monotonic() < deadline:
            view = _fetch_view(client, endpoint)
            if live is not None:
                live.update(render_view(view))
            elif summary_line(view, countdown=False) != printed:
                printed = summary_line(view, countdown=False)
                console.print(summary_line(view), highlight=False, soft_wrap=True)
            running = view.status not in SETTLED or view.deployment_outcome == "Running"
            if not running and (view.deployment_start or 0) >= started_after:
                settled = True
                break
            time.sleep(0.5)
    if not settled:
        console.print(f"[yellow]Still {view.status if view else '?'} after {timeout:.0f}s.")
        return 2
    assert view is not None
    if live is None:
        console.print(render_view(view))
    if view.deployment_outcome == "Succeeded":
        console.print(f"[green]Deployment succeeded: {endpoint} is on {view.config}.")
        return 0
    console.print(
        f"[red]Deployment {view.deployment_outcome or 'ended'}: {endpoint} is {view.status} on "
        f"{view.config}. {view.failure_reason or ''}"
    )
    return 1


def _fetch_view(client: GreenshiftClient, endpoint: str) -> DeploymentView:
    try:
        described = client.boto("sagemaker").describe_endpoint(EndpointName=endpoint)
    except (ClientError, BotoCoreError) as exc:
        _boto_error(exc)
    try:
        deployment = client.call("DescribeDeployment", {"EndpointName": endpoint})
    except GreenshiftApiError:
        deployment = {}
    return DeploymentView.from_api(described, deployment)


def _control_command(name: str, operation: str, doc: str) -> click.Command:
    @click.command(name, help=doc)
    @click.argument("endpoint")
    @click.option("--reason", default="", help="recorded in the deployment's event log")
    @api_options
    def command(endpoint: str, reason: str, settings: Settings) -> None:
        client = GreenshiftClient(settings)
        try:
            answer = client.call(operation, {"EndpointName": endpoint, "Reason": reason})
        except GreenshiftApiError as exc:
            _fail(f"{exc.code}: {exc.message}", code=2)
        click.echo(
            f"{name}: done for deployment {answer.get('DeploymentId')} of {endpoint} "
            f"(by {answer.get('Actor')})."
        )

    return command


pause_command = _control_command(
    "pause", "PauseDeployment", "Hold ENDPOINT's deployment at its next step boundary."
)
resume_command = _control_command("resume", "ResumeDeployment", "Resume a paused deployment.")
promote_command = _control_command(
    "promote", "PromoteDeployment", "End the current bake now and go on with the next step."
)
abort_command = _control_command("abort", "AbortDeployment", "Roll ENDPOINT's deployment back now.")


@click.command("history")
@click.argument("endpoint")
@click.option("--limit", default=10, show_default=True)
@click.option("--plot", "plot", type=click.Path(path_type=Path), help="write a timeline PNG")
@click.option("--json", "as_json", is_flag=True)
@api_options
def history_command(
    endpoint: str, limit: int, plot: Path | None, as_json: bool, settings: Settings
) -> None:
    """ENDPOINT's deployments, newest first, with their steps and outcome."""
    from greenshift.cli.history import plot_history, render_history

    client = GreenshiftClient(settings)
    try:
        listed = client.call("ListDeployments", {"EndpointName": endpoint, "MaxResults": limit})
        deployments = [
            client.call("DescribeDeployment", {"DeploymentId": d["DeploymentId"]})
            for d in listed.get("Deployments", [])
        ]
        if not deployments:
            # Deployments outlive their endpoint; only a name never seen is an error.
            client.boto("sagemaker").describe_endpoint(EndpointName=endpoint)
    except GreenshiftApiError as exc:
        _fail(f"{exc.code}: {exc.message}", code=2)
    except (ClientError, BotoCoreError) as exc:
        _boto_error(exc)
    if as_json:
        click.echo(json.dumps(deployments, indent=2, default=str))
    else:
        click.echo(render_history(endpoint, deployments))
    if plot:
        plot_history(endpoint, deployments, plot)
        click.echo(f"Timeline written to {plot}")
