"""What `greenshift watch` shows, as a pure view built from DescribeEndpoint and
Greenshift.DescribeDeployment, and its rendering with rich."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text


@dataclass
class VariantLine:
    name: str
    green_share: float  # of the variant's traffic on the new fleet
    blue_instances: int
    green_instances: int
    green_desired: int
    status: str | None
    message: str | None


@dataclass
class DeploymentView:
    endpoint: str
    status: str
    config: str
    target_config: str | None
    variants: list[VariantLine] = field(default_factory=list)
    phase: str | None = None
    step: str | None = None
    bake_seconds_left: float | None = None
    alarms: dict[str, str] = field(default_factory=dict)
    paused: bool = False
    deployment_outcome: str | None = None
    deployment_start: float | None = None
    failure_reason: str | None = None
    last_event: str | None = None

    @classmethod
    def from_api(
        cls, described: dict[str, Any], deployment: dict[str, Any], now: datetime | None = None
    ) -> DeploymentView:
        now = now or datetime.now(UTC)
        summary = deployment.get("Deployment", {})
        progress = summary.get("Progress") or {}
        pending = described.get("PendingDeploymentSummary") or {}
        blue_counts = {
            v["VariantName"]: v.get("CurrentInstanceCount", 0)
            for v in described.get("ProductionVariants", [])
        }
        lines = []
        for v in pending.get("ProductionVariants", []):
            statuses = v.get("VariantStatus") or []
            desired_weight = v.get("DesiredWeight") or 0.0
            lines.append(
                VariantLine(
                    name=v["VariantName"],
                    green_share=(v.get("CurrentWeight") or 0.0) / desired_weight
                    if desired_weight
                    else 0.0,
                    blue_instances=blue_counts.get(v["VariantName"], 0),
                    green_instances=v.get("CurrentInstanceCount", 0),
                    green_desired=v.get("DesiredInstanceCount", 0),
                    status=statuses[-1]["Status"] if statuses else None,
                    message=statuses[-1]["StatusMessage"] if statuses else None,
                )
            )
        if not lines:
            # Settled: the serving fleet is the new one if the deployment succeeded, else the old.
            landed = (
                summary.get("Outcome") == "Succeeded"
                and summary.get("ToEndpointConfigName") == described["EndpointConfigName"]
            )
            lines = []
            for v in described.get("ProductionVariants", []):
                count = v.get("CurrentInstanceCount", 0)
                lines.append(
                    VariantLine(
                        name=v["VariantName"],
                        green_share=1.0 if landed else 0.0,
                        blue_instances=0 if landed else count,
                        green_instances=count if landed else 0,
                        green_desired=count if landed else 0,
                        status=None,
                        message=None,
                    )
                )
        bake_left = None
        if progress.get("BakeEndsAt"):
            bake_left = max(0.0, progress["BakeEndsAt"] - now.timestamp())
        events = deployment.get("Events") or []
        return cls(
            endpoint=described["EndpointName"],
            status=described["EndpointStatus"],
            config=described["EndpointConfigName"],
            target_config=pending.get("EndpointConfigName") or summary.get("ToEndpointConfigName"),
            variants=lines,
            phase=progress.get("Phase"),
            step=(
                f"{progress['StepIndex'] + 1}/{progress['StepCount']}"
                if progress.get("StepIndex") is not None and progress.get("StepCount")
                else None
            ),
            bake_seconds_left=bake_left,
            alarms=dict(progress.get("AlarmStates") or {}),
            paused=bool(progress.get("Paused")),
            deployment_outcome=summary.get("Outcome"),
            deployment_start=summary.get("StartTime"),
            failure_reason=described.get("FailureReason") or summary.get("FailureReason"),
            last_event=events[-1]["Message"] if events else None,
        )


def summary_line(view: DeploymentView, countdown: bool = True) -> str:
    """The view in one line, for output that is not a terminal. Without `countdown` it changes
    only when the deployment does, which is when a new line is worth printing."""
    parts = [view.status, view.config]
    if view.target_config and view.status not in ("InService", "Failed"):
        parts[-1] += f" -> {view.target_config}"
    if view.paused:
        parts.append("PAUSED")
    if view.phase:
        parts.append(f"phase {view.phase}")
    if view.step:
        parts.append(f"step {view.step}")
    for line in view.variants:
        parts.append(
            f"{line.name} new {line.green_share:.0%} "
            f"({line.blue_instances} old / {line.green_instances} of {line.green_desired} new)"
        )
    if countdown and view.bake_seconds_left is not None:
        parts.append(f"bake {view.bake_seconds_left:.0f}s left")
    parts += [f"{name} {state}" for name, state in view.alarms.items()]
    if view.last_event:
        parts.append(f"| {view.last_event}")
    return "  ".join(parts)


def share_bar(share: float, width: int = 30) -> Text:
    """Old fleet in blue, new fleet in green, `width` cells."""
    green = round(max(0.0, min(1.0, share)) * width)
    bar = Text()
    bar.append("█" * (width - green), style="blue")
    bar.append("█" * green, style="green")
    return bar


def render_view(view: DeploymentView) -> Group:
    head = Text()
    head.append(f"{view.endpoint}  ", style="bold")
    colour = {"InService": "green", "RollingBack": "red", "Failed": "red"}.get(
        view.status, "yellow"
    )
    head.append(view.status, style=f"bold {colour}")
    head.append(f"  {view.config}")
    if view.target_config and view.status not in ("InService", "Failed"):
        head.append(f" → {view.target_config}")
    if view.paused:
        head.append("  PAUSED", style="bold magenta")
    parts: list[Any] = [head]
    detail = []
    if view.phase:
        detail.append(f"phase {view.phase}")
    if view.step:
        detail.append(f"step {view.step}")
    if view.bake_seconds_left is not None:
        detail.append(f"bake {view.bake_seconds_left:.0f}s left")
    if detail:
        parts.append(Text("  ".join(detail)))
    table = Table(box=None, pad_edge=False, show_header=True, header_style="dim")
    table.add_column("variant")
    table.add_column("old ◀ traffic ▶ new")
    table.add_column("new %", justify="right")
    table.add_column("instances old/new")
    table.add_column("status")
    for line in view.variants:
        table.add_row(
            line.name,
            share_bar(line.green_share),
            f"{line.green_share:.0%}",
            f"{line.blue_instances} / {line.green_instances} of {line.green_desired}",
            line.message or line.status or "",
        )
    parts.append(table)
    if view.alarms:
        alarms = Text("alarms  ")
        for name, state in view.alarms.items():
            style = {"ALARM": "bold red", "OK": "green"}.get(state, "yellow")
            alarms.append(f"{name}: {state}  ", style=style)
        parts.append(alarms)
    if view.last_event:
        parts.append(Text(f"last event  {view.last_event}", style="dim"))
    if view.failure_reason:
        parts.append(Text(f"FailureReason  {view.failure_reason}", style="red"))
    return Group(*parts)
