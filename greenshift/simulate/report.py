"""What a rehearsal reports: the timeline, the peak instance count, the instance-hours and the
history size. Pure functions over what the run recorded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

# Temporal warns past this many history events and fails a workflow past 51,200.
HISTORY_WARNING = 10_240


@dataclass(frozen=True)
class TimelineEntry:
    """One event of the deployment, `offset` seconds after it started."""

    offset: float
    type: str
    message: str


@dataclass
class Report:
    endpoint: str
    outcome: str
    failure_reason: str | None
    duration_seconds: float
    timeline: list[TimelineEntry]
    peak_instances: int
    instance_hours: float
    history_events: int
    wall_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def steps(self) -> list[tuple[str, str]]:
        """The timeline without its times: what two runs of one request must agree on."""
        return [(e.type, e.message) for e in self.timeline]


def instance_usage(
    initial: dict[str, int],
    changes: Sequence[tuple[float, str, int]],
    end: float,
) -> tuple[int, float]:
    """(peak instance count, instance-hours) from the sizes at offset 0 and each change
    (offset seconds, fleet id, size after), up to offset `end`."""
    sizes = dict(initial)
    peak = sum(sizes.values())
    area = 0.0
    last = 0.0
    for offset, fleet, size in sorted(changes, key=lambda c: c[0]):
        offset = min(max(offset, 0.0), end)
        area += sum(sizes.values()) * (offset - last)
        last = offset
        sizes[fleet] = size
        peak = max(peak, sum(sizes.values()))
    area += sum(sizes.values()) * max(end - last, 0.0)
    return peak, area / 3600.0


def offsets(start: datetime, times: Sequence[datetime | None]) -> list[float]:
    """Seconds since `start`; an unknown time counts as the start."""
    return [0.0 if t is None else (t - start).total_seconds() for t in times]


def render(report: Report) -> str:
    out = [
        f"Rehearsal of UpdateEndpoint {report.endpoint}: {report.outcome} after "
        f"{_duration(report.duration_seconds)} (simulated in {report.wall_seconds:.1f} s)",
    ]
    if report.failure_reason:
        out.append(f"  FailureReason: {report.failure_reason}")
    out.append("")
    for entry in report.timeline:
        out.append(f"  +{_clock(entry.offset)}  {entry.type:<14} {entry.message}")
    out += [
        "",
        f"  peak instances:   {report.peak_instances}",
        f"  instance-hours:   {report.instance_hours:.2f}",
        f"  history events:   {report.history_events} (Temporal warns at {HISTORY_WARNING:,})",
    ]
    out += [f"  warning: {w}" for w in report.warnings]
    return "\n".join(out)


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600:d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s ({_clock(seconds)})"
