"""`greenshift plan`: show what an UpdateEndpoint would do, step by step, before running it.

Offline mode reads SageMaker-shaped JSON files (`--current`, `--endpoint-config`, and
`--deployment-config` or `--update-request`) and prints the same plan the workflow would carry
out. Live mode (`greenshift plan ENDPOINT --endpoint-config NAME`) asks a running Greenshift
(`Greenshift.PlanDeployment`), which runs the very validation and planner UpdateEndpoint would,
against the endpoint as it is now; both modes print with the same renderer.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from pydantic import BaseModel

from greenshift.cli.options import api_options
from greenshift.client import GreenshiftApiError, GreenshiftClient
from greenshift.contracts.sagemaker_shapes import (
    CreateEndpointConfigInput,
    DeploymentConfig,
    ProductionVariantSummary,
    UpdateEndpointInput,
)
from greenshift.contracts.validation import parse_request
from greenshift.errors import ValidationError
from greenshift.planning.model import Plan, VariantSpec
from greenshift.planning.planner import plan_update
from greenshift.planning.render import plan_json, render_table
from greenshift.planning.specs import DEFAULT_WEIGHT, variants_from_config
from greenshift.settings import Settings

BAD_INPUT = 2
ShapeT = TypeVar("ShapeT", bound=BaseModel)


@dataclass(frozen=True)
class PlanInputs:
    """Everything the planner needs for one UpdateEndpoint."""

    current: list[VariantSpec]
    new: list[VariantSpec]
    request: UpdateEndpointInput
    last_deployment_config: DeploymentConfig | None = None

    def plan(self) -> Plan:
        return plan_update(self.current, self.new, self.request, self.last_deployment_config)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise ValidationError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except ValueError as exc:
        raise ValidationError(f"{path} is not valid JSON: {exc}") from None


def parse_file(shape: type[ShapeT], path: Path) -> ShapeT:
    try:
        return parse_request(shape, read_json(path))
    except ValidationError as exc:
        raise ValidationError(f"{path}: {exc.message}") from None


def current_from_document(document: Any, source: str) -> tuple[list[VariantSpec], Any]:
    """The serving variants from a DescribeEndpoint output (its `ProductionVariants`, and its
    `LastDeploymentConfig`), or from a bare list of variants.

    Each variant is a ProductionVariantSummary, optionally with `ModelName` and `InstanceType`
    (a summary has neither), or a ProductionVariant from an EndpointConfig. Counts and weights are
    taken Desired first, then Current, then Initial.
    """
    last = None
    items = document
    if isinstance(document, dict):
        items = document.get("ProductionVariants")
        last = document.get("LastDeploymentConfig")
    if not isinstance(items, list) or not items:
        raise ValidationError(
            f"{source}: expected a DescribeEndpoint output with ProductionVariants, or a "
            "non-empty list of variants."
        )
    specs: list[VariantSpec] = []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise ValidationError(f"{source}: variant {index} is not an object.")
        summary = parse_request(ProductionVariantSummary, item)
        count = _first(item, "DesiredInstanceCount", "CurrentInstanceCount", "InitialInstanceCount")
        weight = _first(item, "DesiredWeight", "CurrentWeight", "InitialVariantWeight")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValidationError(
                f"{source}: variant {summary.VariantName} needs an instance count "
                "(DesiredInstanceCount, CurrentInstanceCount or InitialInstanceCount)."
            )
        if weight is not None and (not isinstance(weight, int | float) or weight < 0):
            raise ValidationError(f"{source}: variant {summary.VariantName} has a bad weight.")
        specs.append(
            VariantSpec(
                variant=summary.VariantName,
                model_name=str(item.get("ModelName", "(current)")),
                instance_type=str(item.get("InstanceType", "(current)")),
                instance_count=count,
                weight=DEFAULT_WEIGHT if weight is None else float(weight),
            )
        )
    return specs, last


def _first(item: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if item.get(key) is not None:
            return item[key]
    return None


def offline_inputs(
    current: Path,
    endpoint_config: Path,
    deployment_config: Path | None,
    update_request: Path | None,
) -> PlanInputs:
    """PlanInputs from files in SageMaker shapes."""
    if deployment_config is not None and update_request is not None:
        raise ValidationError(
            "Give --deployment-config or --update-request, not both: an UpdateEndpoint request "
            "carries its own DeploymentConfig."
        )
    blue, last_document = current_from_document(read_json(current), str(current))
    last = None
    if isinstance(last_document, dict):
        try:
            last = parse_request(DeploymentConfig, last_document)
        except ValidationError as exc:
            raise ValidationError(f"{current}: LastDeploymentConfig: {exc.message}") from None
    config = parse_file(CreateEndpointConfigInput, endpoint_config)
    green = variants_from_config(config.ProductionVariants)
    if update_request is not None:
        request = parse_file(UpdateEndpointInput, update_request)
    else:
        body: dict[str, Any] = {
            "EndpointName": "endpoint",
            "EndpointConfigName": config.EndpointConfigName,
        }
        if deployment_config is not None:
            body["DeploymentConfig"] = read_json(deployment_config)
            parse_file(DeploymentConfig, deployment_config)
        request = parse_request(UpdateEndpointInput, body)
    return PlanInputs(blue, green, request, last)


def fail(message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(BAD_INPUT)


def live_request(
    endpoint: str,
    endpoint_config: str,
    deployment_config: Path | None,
    update_request: Path | None,
) -> dict[str, Any]:
    """The UpdateEndpoint request PlanDeployment is asked about, from the command line."""
    if deployment_config is not None and update_request is not None:
        raise ValidationError(
            "Give --deployment-config or --update-request, not both: an UpdateEndpoint request "
            "carries its own DeploymentConfig."
        )
    body: dict[str, Any] = {}
    if update_request is not None:
        body = read_json(update_request)
        if not isinstance(body, dict):
            raise ValidationError(f"{update_request}: expected an UpdateEndpoint request object.")
    body["EndpointName"] = endpoint
    body["EndpointConfigName"] = endpoint_config
    if deployment_config is not None:
        body["DeploymentConfig"] = read_json(deployment_config)
    return body


def live_answer_text(answer: dict[str, Any]) -> str:
    """The plan table, then what would stop the update from starting now (limits, status)."""
    text = render_table(Plan.model_validate(answer["Plan"]))
    if not answer.get("WithinLimits", True):
        text += f"\nover a limit: {answer.get('LimitMessage', '')}\n"
    if answer.get("StatusMessage"):
        text += f"\ncannot start now: {answer['StatusMessage']}\n"
    return text


@click.command("plan")
@click.argument("endpoint", required=False)
@click.option(
    "--current",
    type=click.Path(path_type=Path, dir_okay=False),
    help="offline: the serving variants, a DescribeEndpoint output or a list of variants (JSON)",
)
@click.option(
    "--endpoint-config",
    "endpoint_config",
    help="the new EndpointConfig: its name (live), or a CreateEndpointConfig request file "
    "(offline)",
)
@click.option(
    "--deployment-config",
    "deployment_config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="a DeploymentConfig (JSON); without it the update deploys all at once",
)
@click.option(
    "--update-request",
    "update_request",
    type=click.Path(path_type=Path, dir_okay=False),
    help="a whole UpdateEndpoint request (JSON), for the Retain* flags",
)
@click.option(
    "--rollout-group",
    "rollout_group",
    type=click.Path(path_type=Path, dir_okay=False),
    help="live: plan every update of a RolloutGroup input (JSON), wave by wave",
)
@click.option("--json", "as_json", is_flag=True, help="print the plan as JSON")
@api_options
def plan_command(
    endpoint: str | None,
    current: Path | None,
    endpoint_config: str | None,
    deployment_config: Path | None,
    update_request: Path | None,
    rollout_group: Path | None,
    as_json: bool,
    settings: Settings,
) -> None:
    """Show the steps an UpdateEndpoint would take: traffic and instances per fleet over time,
    bakes and their alarms, peak instances and minimum duration.

    \b
    Live:    greenshift plan ENDPOINT --endpoint-config NAME [--deployment-config dc.json]
    Offline: greenshift plan --current current.json --endpoint-config new-config.json
             [--deployment-config dc.json | --update-request req.json]
    Group:   greenshift plan --rollout-group group.json
    """
    if rollout_group is not None:
        from greenshift.cli.group_plan import plan_group

        plan_group(rollout_group, as_json, settings)
        return
    if endpoint is not None:
        if current is not None:
            fail("Give ENDPOINT (live) or --current FILE (offline), not both.")
        if endpoint_config is None:
            fail("greenshift plan ENDPOINT needs --endpoint-config NAME.")
        _plan_live(endpoint, endpoint_config, deployment_config, update_request, as_json, settings)
        return
    if current is None or endpoint_config is None:
        fail(
            "greenshift plan needs ENDPOINT and --endpoint-config NAME (live), or --current FILE "
            "and --endpoint-config FILE (offline)."
        )
    try:
        plan = offline_inputs(
            current, Path(endpoint_config), deployment_config, update_request
        ).plan()
    except ValidationError as exc:
        fail(exc.message)
    click.echo(plan_json(plan) if as_json else render_table(plan), nl=as_json)


def _plan_live(
    endpoint: str,
    endpoint_config: str,
    deployment_config: Path | None,
    update_request: Path | None,
    as_json: bool,
    settings: Settings,
) -> None:
    client = GreenshiftClient(settings)
    try:
        request = live_request(endpoint, endpoint_config, deployment_config, update_request)
        answer = client.call("PlanDeployment", request)
    except ValidationError as exc:
        fail(exc.message)
    except GreenshiftApiError as exc:
        fail(f"{exc.code}: {exc.message}")
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps(answer, indent=2))
    else:
        click.echo(live_answer_text(answer), nl=False)
        _show_placement(endpoint_config, settings)


def _show_placement(endpoint_config: str, settings: Settings) -> None:
    """Where the new config's instances would go (greenshift.hosts), when this machine can read
    the registry; a remote CLI without it just shows the plan."""
    from greenshift.hosts.preview import placement_lines
    from greenshift.hosts.store import HostStore
    from greenshift.registry.sql import SqlRegistry

    if settings.database_url is None and not (settings.home_dir / "registry.db").exists():
        return
    store = HostStore(settings.registry_url)
    registry = SqlRegistry(settings.registry_url, arn_for=settings.arn)
    try:
        config = registry.get_endpoint_config(endpoint_config)
        if config is None:
            return
        instances = registry.list_instances()
        types = {}
        for fleet_id in {r.fleet_id for r in instances}:
            fleet = registry.get_fleet(fleet_id)
            if fleet is not None:
                types[fleet_id] = fleet.instance_type
        variants = list(config.spec.get("ProductionVariants") or [])
        lines = placement_lines(
            variants, store.list(), instances, types, settings.host_lost_after_seconds
        )
        click.echo("\n" + "\n".join(lines))
    finally:
        store.close()
        registry.close()
