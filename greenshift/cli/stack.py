"""Commands that run Greenshift: `up` (everything), `status`, and one command per component."""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import shlex
import signal
import sys
from collections.abc import Callable

import click

from greenshift.cli.options import stack_options
from greenshift.settings import Settings
from greenshift.supervisor.environment import client_environment, settings_env
from greenshift.supervisor.home import HomeError, prepare_home
from greenshift.supervisor.lifecycle import AlreadyRunningError, Supervisor
from greenshift.supervisor.status_report import component_health


@click.command("up")
@stack_options
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="workers to run (1)")
def up_command(settings: Settings, workers: int | None) -> None:
    """Start the whole stack on this machine and keep it running until Ctrl-C."""
    if workers is not None:
        settings = settings.model_copy(update={"workers": workers})

    def say(line: str) -> None:
        # Whoever read our output may be gone (closed terminal, killed parent): a broken pipe
        # must not stop the stop, or every component and model instance is left running.
        with contextlib.suppress(OSError):
            click.echo(line)

    try:
        prepare_home(settings)
    except HomeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    supervisor = Supervisor(settings, say=say)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    say(f"Starting Greenshift in {settings.home_dir}")
    try:
        supervisor.start()
    except AlreadyRunningError as exc:
        click.echo(f"error: {exc}", err=True)
        supervisor.stop()
        sys.exit(2)
    except (RuntimeError, FileNotFoundError) as exc:
        click.echo(f"error: {exc}", err=True)
        supervisor.stop()
        sys.exit(1)
    try:
        if not supervisor.stopping:
            _print_banner(settings, say)
        supervisor.run_forever()
    finally:
        say("Stopping Greenshift")
        supervisor.stop()
        say("Stopped.")


def _print_banner(settings: Settings, say: Callable[[str], None]) -> None:
    say("")
    say("Greenshift is up.")
    say(f"  control API   {settings.api_url}   (SageMaker + CloudWatch + CloudWatch Logs)")
    say(f"  runtime       {settings.runtime_url}/endpoints/<name>/invocations")
    say(f"  Temporal      {settings.temporal_target}")
    if settings.temporal_address is None:
        say(f"  Temporal UI   http://127.0.0.1:{settings.ui_port}   (loopback only)")
    say(f"  logs          {settings.home_dir / 'logs'}")
    say("")
    say("Point boto3 and the AWS CLI at it:")
    for key, value in client_environment(settings).items():
        say(f"  export {key}={shlex.quote(value)}")
    say("")
    say("Ctrl-C stops everything, model instances included.")


@click.command("status")
@stack_options
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def status_command(settings: Settings, as_json: bool) -> None:
    """Report each component of a running `greenshift up`: pid and health."""
    report = component_health(settings)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        if not all(info["supervised"] for info in report.values()):
            left = [n for n, info in report.items() if info["running"]]
            click.echo(
                "supervisor down: no `greenshift up` holds this home"
                + (
                    f" ({', '.join(left)} left running: the next `greenshift up` stops them"
                    " and starts afresh; model instances are adopted)"
                    if left
                    else ""
                )
            )
        for name, info in report.items():
            health = "healthy" if info["healthy"] else ("running" if info["running"] else "down")
            click.echo(
                f"{name:<10} {health:<8} pid {info['pid'] or '-'}  restarts {info['restarts']}"
            )
            if info["problem"] and info["running"]:
                click.echo(f"           problem: {info['problem']}")
    sys.exit(0 if all(info["healthy"] for info in report.values()) else 1)


def _component_command(name: str, module: str, help_text: str) -> click.Command:
    @click.command(name, help=help_text)
    @stack_options
    def command(settings: Settings) -> None:
        os.environ.update(settings_env(settings))
        sys.argv = [module]
        runpy.run_module(module, run_name="__main__", alter_sys=True)

    return command


api_command = _component_command(
    "api", "greenshift.api", "Run the control API (SageMaker + CloudWatch) in the foreground."
)
worker_command = _component_command(
    "worker", "worker", "Run a Temporal worker and this host's fleet agent in the foreground."
)
dataplane_command = _component_command(
    "dataplane", "greenshift.dataplane", "Run HAProxy, the router controller and the collector."
)
metrics_command = _component_command(
    "metrics", "greenshift.metrics", "Run the alarm evaluator in the foreground."
)
