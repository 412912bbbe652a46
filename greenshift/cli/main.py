"""The `greenshift` command."""

from __future__ import annotations

import click

from greenshift import temporal
from greenshift.cli.capture import capture_command
from greenshift.cli.groups import rollout_group_command
from greenshift.cli.hosts import agent_command, hosts_command
from greenshift.cli.logs import logs_command
from greenshift.cli.operate import (
    abort_command,
    history_command,
    pause_command,
    promote_command,
    resume_command,
    update_endpoint_command,
    watch_command,
)
from greenshift.cli.plan import plan_command
from greenshift.cli.simulate import simulate_command
from greenshift.cli.stack import (
    api_command,
    dataplane_command,
    metrics_command,
    status_command,
    up_command,
    worker_command,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="greenshift")
def cli() -> None:
    """Greenshift: SageMaker endpoint hosting with safe deployments, run yourself."""


for command in (
    up_command,
    status_command,
    plan_command,
    simulate_command,
    rollout_group_command,
    update_endpoint_command,
    watch_command,
    pause_command,
    resume_command,
    promote_command,
    abort_command,
    history_command,
    logs_command,
    capture_command,
    api_command,
    worker_command,
    dataplane_command,
    metrics_command,
    agent_command,
    hosts_command,
):
    cli.add_command(command)


def main() -> None:
    temporal.run_process(cli)  # temporal.py says why
