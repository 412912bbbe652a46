"""`greenshift plan --rollout-group FILE`: the plan of every update of a group, wave by wave,
from the running Greenshift (Greenshift.PlanDeployment, with the group's alarms added as the
group will add them), and the group's own figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import pydantic

from greenshift.client import GreenshiftApiError, GreenshiftClient
from greenshift.groups.model import RolloutGroupInput, with_group_alarms
from greenshift.settings import Settings

BAD_INPUT = 2


def group_figures(waves: list[list[dict[str, Any]]]) -> dict[str, int]:
    """The group's minimum duration (its waves one after another, each as long as its longest
    update) and its peak instances (the updates of one wave run together). Pure."""
    duration = sum(max(a["Plan"]["min_duration_seconds"] for a in wave) for wave in waves)
    peak = max(sum(a["PeakInstances"] for a in wave) for wave in waves)
    return {"MinDurationSeconds": duration, "PeakInstancesOfAWave": peak}


def plan_group(path: Path, as_json: bool, settings: Settings) -> None:
    from greenshift.cli.plan import live_answer_text

    try:
        group = RolloutGroupInput.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, pydantic.ValidationError) as exc:
        click.echo(f"{path}: {exc}", err=True)
        sys.exit(BAD_INPUT)
    client = GreenshiftClient(settings)
    waves: list[list[dict[str, Any]]] = []
    try:
        for wave in group.Waves:
            waves.append(
                [
                    client.call("PlanDeployment", with_group_alarms(u, group.alarm_names()))
                    for u in wave.Updates
                ]
            )
    except GreenshiftApiError as exc:
        click.echo(f"{exc.code}: {exc.message}", err=True)
        sys.exit(BAD_INPUT)
    finally:
        client.close()
    figures = group_figures(waves)
    if as_json:
        click.echo(json.dumps({"Waves": waves, **figures}, indent=2))
        return
    for number, answers in enumerate(waves, start=1):
        click.echo(f"=== wave {number} of {len(waves)} ===")
        for answer in answers:
            click.echo(f"--- {answer['EndpointName']}")
            click.echo(live_answer_text(answer), nl=False)
    click.echo(
        f"group {group.RolloutGroupName}: {len(waves)} wave(s), at least "
        f"{figures['MinDurationSeconds']} s, at most {figures['PeakInstancesOfAWave']} "
        "instance(s) at the peak of a wave; alarms "
        f"{', '.join(group.alarm_names()) or 'none'} watched throughout"
    )
