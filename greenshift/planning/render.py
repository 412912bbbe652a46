"""A plan as text: the timeline table `greenshift plan` prints, and its JSON.

Traffic is shown per fleet as its share of the whole endpoint's traffic (variant weight share times
fleet share), since that is what a user watching the error rate needs to know.
"""

from __future__ import annotations

from collections.abc import Mapping

from greenshift.names import fleet_key
from greenshift.planning.model import (
    BakeStep,
    Plan,
    ProvisionStep,
    Step,
    TerminateStep,
    TrafficStep,
    VariantTraffic,
)

HEADERS = ("offset", "#", "step", "traffic", "instances", "bake")


def plan_json(plan: Plan) -> str:
    return plan.model_dump_json(indent=2)


def format_duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def traffic_cells(traffic: Mapping[str, VariantTraffic]) -> str:
    total = sum(t.weight for t in traffic.values())
    parts: list[str] = []
    for variant, t in traffic.items():
        endpoint_share = t.weight / total if total > 0 else 0.0
        for role, share in (("blue", t.blue), ("green", t.green)):
            pct = 100 * endpoint_share * share
            if pct > 0:
                parts.append(f"{fleet_key(role, variant)} {_pct(pct)}")
    return " ".join(parts) or "-"


def _pct(value: float) -> str:
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


def instance_cells(instances: Mapping[str, int]) -> str:
    return " ".join(f"{key} {count}" for key, count in instances.items() if count > 0) or "-"


def describe(step: Step) -> str:
    if isinstance(step, ProvisionStep):
        return f"provision {step.fleet.key} to {step.count} x {step.instance_type}"
    if isinstance(step, TerminateStep):
        return f"terminate {step.fleet.key} to {step.count}"
    if isinstance(step, TrafficStep):
        return "shift traffic"
    return f"bake {step.seconds}s ({step.reason.value})"


def _bake_cell(step: Step) -> str:
    if not isinstance(step, BakeStep):
        return ""
    alarms = ", ".join(step.alarms) if step.alarms else "no alarms"
    return f"{step.seconds}s, watching {alarms}"


def render_table(plan: Plan) -> str:
    """The timeline: one row per step after a row for the starting state, then the totals."""
    rows: list[tuple[str, ...]] = [
        (
            "0:00:00",
            "",
            "start",
            traffic_cells(plan.traffic_before),
            instance_cells(plan.instances_before),
            "",
        )
    ]
    for planned in plan.steps:
        rows.append(
            (
                format_duration(planned.offset_seconds),
                str(planned.index + 1),
                describe(planned.step),
                traffic_cells(planned.traffic_after),
                instance_cells(planned.instances_after),
                _bake_cell(planned.step),
            )
        )
    widths = [max(len(row[i]) for row in [HEADERS, *rows]) for i in range(len(HEADERS))]

    def line(row: tuple[str, ...]) -> str:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        return "  ".join(cells).rstrip()

    lines = [_title(plan), "", line(HEADERS), line(tuple("-" * w for w in widths))]
    lines += [line(row) for row in rows]
    lines += [
        "",
        f"peak instances:   {plan.peak_instances}",
        f"minimum duration: {format_duration(plan.min_duration_seconds)} "
        f"({plan.min_duration_seconds} s of waits)",
    ]
    if plan.max_execution_timeout_seconds is not None:
        lines.append(
            f"deadline:         {plan.max_execution_timeout_seconds} s "
            "(MaximumExecutionTimeoutInSeconds)"
        )
    if plan.notes:
        lines += ["", "notes:"] + [f"  - {note}" for note in plan.notes]
    return "\n".join(lines) + "\n"


def _title(plan: Plan) -> str:
    alarms = ", ".join(plan.alarms) if plan.alarms else "none"
    variants = ", ".join(s.variant for s in plan.green or plan.blue)
    return f"Plan: {plan.strategy.value} ({variants}); alarms: {alarms}"
