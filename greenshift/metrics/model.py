"""Metric datapoints: what the data plane's collector produces and the metric store keeps."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

NAMESPACE = "AWS/SageMaker"

# SEMANTICS.md section 7.
INVOCATIONS = "Invocations"
INVOCATION_4XX = "Invocation4XXErrors"
INVOCATION_5XX = "Invocation5XXErrors"
MODEL_LATENCY = "ModelLatency"  # microseconds
OVERHEAD_LATENCY = "OverheadLatency"  # microseconds


class Datapoint(BaseModel):
    """One metric, one set of dimensions, one second: the aggregate of what happened in it.

    For the 0/1 metrics (errors) `count` is the number of requests and `sum` the number of errors,
    so Sum is the error count and Average the error rate, as on CloudWatch.
    """

    namespace: str = NAMESPACE
    metric_name: str
    dimensions: dict[str, str]
    timestamp: int  # epoch second
    count: float
    sum: float
    minimum: float
    maximum: float
    # A bounded sample of the raw values of the second, for percentile statistics.
    values: list[float] = Field(default_factory=list)


class MetricSink(Protocol):
    def put(self, points: list[Datapoint]) -> None: ...
