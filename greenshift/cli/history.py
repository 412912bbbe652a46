"""`greenshift history`: an endpoint's deployments as text, and as a timeline picture."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def render_history(endpoint: str, deployments: list[dict[str, Any]]) -> str:
    if not deployments:
        return f"{endpoint}: no deployments."
    out = []
    for item in deployments:
        d = item["Deployment"]
        took = (d.get("EndTime") or d["StartTime"]) - d["StartTime"]
        out.append(
            f"{d['DeploymentId']}  {d['Operation']}  {d.get('FromEndpointConfigName') or '-'} → "
            f"{d.get('ToEndpointConfigName') or '-'}  {d['Outcome']}  "
            f"started {_time(d['StartTime'])}  took {took:.0f}s"
        )
        if d.get("FailureReason"):
            out.append(f"    FailureReason: {d['FailureReason']}")
        for event in item.get("Events", []):
            offset = event["Time"] - d["StartTime"]
            who = f" [{event['Actor']}]" if event.get("Actor") else ""
            out.append(f"    +{offset:7.1f}s  {event['Type']:<14} {event['Message']}{who}")
        out.append("")
    return "\n".join(out).rstrip()


def green_share_timeline(item: dict[str, Any]) -> list[tuple[float, float]]:
    """(seconds since start, share of traffic on the new fleet) at each step that started,
    from the plan's traffic and the StepStarted events. Pure."""
    d = item["Deployment"]
    plan = d.get("Plan") or {}
    steps = plan.get("steps", [])
    points: list[tuple[float, float]] = [(0.0, 0.0)]
    for event in item.get("Events", []):
        detail = event.get("Detail") or {}
        index = detail.get("step")
        if event["Type"] != "StepStarted" or index is None or not 0 <= index < len(steps):
            continue
        traffic = steps[index].get("traffic_after", {})
        weights = sum(v["weight"] for v in traffic.values()) or 1.0
        share = sum(v["weight"] * v["green"] for v in traffic.values()) / weights
        if detail.get("phase") == "RollingBack":
            share = 0.0
        points.append((event["Time"] - d["StartTime"], share))
    if d.get("EndTime"):
        final = 1.0 if d["Outcome"] == "Succeeded" else 0.0
        points.append((d["EndTime"] - d["StartTime"], final))
    return points


def plot_history(endpoint: str, deployments: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, len(deployments))
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.2 * rows), dpi=100, squeeze=False)
    for ax, item in zip(axes[:, 0], deployments, strict=False):
        d = item["Deployment"]
        points = green_share_timeline(item)
        xs = [p[0] for p in points]
        ys = [p[1] * 100 for p in points]
        ax.step(xs, ys, where="post", color="#2ca02c")
        ax.fill_between(xs, ys, step="post", color="#2ca02c", alpha=0.2)
        for event in item.get("Events", []):
            if event["Type"] in ("AlarmTripped", "Aborted", "RollbackStarted"):
                ax.axvline(event["Time"] - d["StartTime"], color="#d62728", linestyle="--")
        ax.set_ylim(0, 105)
        ax.set_ylabel("new fleet %")
        ax.set_title(
            f"{d['DeploymentId']}: {d.get('FromEndpointConfigName') or '-'} → "
            f"{d.get('ToEndpointConfigName') or '-'} ({d['Outcome']})",
            fontsize=9,
        )
    axes[-1, 0].set_xlabel("seconds since the deployment started")
    fig.suptitle(f"Deployments of {endpoint}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
