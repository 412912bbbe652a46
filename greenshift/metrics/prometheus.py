"""Prometheus text exposition of the collector's cumulative counters (SageMaker names).

The collector rewrites `<home>/dataplane/metrics.prom` every second, and `render()` gives the same
text to any server that wants to expose it. HAProxy's own counters are at
`http://<host>:<stats_port>/metrics` (its built-in exporter)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

Dims = tuple[tuple[str, str], ...]


@dataclass
class Totals:
    """Cumulative counters of one series (EndpointName, VariantName[, EndpointConfigName])."""

    invocations: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    model_latency_us_sum: float = 0.0
    overhead_latency_us_sum: float = 0.0
    latency_count: int = 0
    last_seen: float = 0.0


_METRICS = (
    ("sagemaker_invocations_total", "counter", "Invocations", "invocations"),
    ("sagemaker_invocation_4xx_errors_total", "counter", "Invocation4XXErrors", "errors_4xx"),
    ("sagemaker_invocation_5xx_errors_total", "counter", "Invocation5XXErrors", "errors_5xx"),
    (
        "sagemaker_model_latency_microseconds_sum",
        "counter",
        "ModelLatency sum",
        "model_latency_us_sum",
    ),
    (
        "sagemaker_overhead_latency_microseconds_sum",
        "counter",
        "OverheadLatency sum",
        "overhead_latency_us_sum",
    ),
    ("sagemaker_latency_samples_total", "counter", "Requests with a latency", "latency_count"),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(totals: Mapping[Dims, Totals]) -> str:
    lines: list[str] = []
    series = sorted(totals.items())
    for name, kind, help_text, attr in _METRICS:
        lines.append(f"# HELP {name} {help_text} (AWS/SageMaker)")
        lines.append(f"# TYPE {name} {kind}")
        for dims, t in series:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in dims)
            value = getattr(t, attr)
            lines.append(
                f"{name}{{{labels}}} {value:g}"
                if isinstance(value, float)
                else f"{name}{{{labels}}} {value}"
            )
    return "\n".join(lines) + "\n"
