"""The demo's timeline picture: measured traffic share per model version over time, bakes shaded,
the alarm and the rollback marked."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from greenshift.demo.story import StoryResult


def shares_per_second(result: StoryResult) -> tuple[list[int], dict[str, list[float]]]:
    """Fraction of the requests sent in each second that each version answered (pure)."""
    per_second: dict[int, Counter[str]] = defaultdict(Counter)
    for answer in result.load.answers:
        per_second[int(answer.at)][answer.version or "failed"] += 1
    if not per_second:
        return [], {}
    seconds = list(range(min(per_second), max(per_second) + 1))
    # Old before new, failures on top, so the picture reads bottom-up like the story.
    versions = sorted({v for c in per_second.values() for v in c}, key=lambda v: (v == "failed", v))
    series = {
        v: [per_second[s][v] / max(1, sum(per_second[s].values())) for s in seconds]
        for v in versions
    }
    return seconds, series


def bake_spans(result: StoryResult) -> list[tuple[float, float]]:
    """Intervals during which DescribeEndpoint showed a Baking variant."""
    spans: list[tuple[float, float]] = []
    start: float | None = None
    for sample in result.samples:
        baking = sample.variant_status == "Baking"
        if baking and start is None:
            start = sample.at
        elif not baking and start is not None:
            spans.append((start, sample.at))
            start = None
    if start is not None and result.samples:
        spans.append((start, result.samples[-1].at))
    return spans


def draw(result: StoryResult, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds, series = shares_per_second(result)
    colours = {"v1": "#1f77b4", "v2": "#2ca02c", "failed": "#d62728"}
    fig, ax = plt.subplots(figsize=(12, 4.5), dpi=110)
    if seconds:
        bottom = [0.0] * len(seconds)
        for version, values in series.items():
            ax.bar(
                seconds,
                [v * 100 for v in values],
                bottom=[b * 100 for b in bottom],
                width=1.0,
                color=colours.get(version, "#9467bd"),
                label=f"answered by {version}" if version != "failed" else "failed (model 5xx)",
                align="edge",
                linewidth=0,
                zorder=2,
            )
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    for i, (start, end) in enumerate(bake_spans(result)):
        # A band above the bars, so the bars keep their colours.
        ax.axvspan(
            start, end, ymin=0.915, ymax=0.955, color="#ffbf00", label="baking" if i == 0 else None
        )
    for deployment in result.deployments:
        ax.axvline(deployment.started, color="black", linestyle=":", linewidth=1)
        ax.text(deployment.started + 0.3, 106, deployment.name, fontsize=8, ha="left")
        if deployment.outcome == "rolled back":
            ax.axvline(deployment.ended, color="#d62728", linestyle="--", linewidth=1.2)
            ax.text(
                deployment.ended + 0.3, 95, "rolled back", fontsize=8, color="#d62728", ha="left"
            )
    if result.alarm_at is not None:
        ax.axvline(result.alarm_at, color="#d62728", linewidth=1.5, label="alarm → ALARM")
    ax.set_ylim(0, 112)
    ax.set_xlabel("seconds since traffic started")
    ax.set_ylabel("share of requests (%)")
    ax.set_title("Greenshift demo: traffic per model version")
    ax.legend(loc="lower left", fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
