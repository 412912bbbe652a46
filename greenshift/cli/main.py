"""The `greenshift` command."""

from __future__ import annotations

import click

from greenshift.cli.plan import plan_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="greenshift")
def cli() -> None:
    """Greenshift: SageMaker endpoint hosting with safe deployments, run yourself."""


cli.add_command(plan_command)


def main() -> None:
    cli()
