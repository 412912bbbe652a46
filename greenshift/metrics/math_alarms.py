"""Metric-math alarms wired to the store and the API: the checks PutMetricAlarm makes on
`Metrics`, the evaluation spec of such an alarm, and its windows of period values (each
MetricStat read from the store, then the expressions of greenshift.metrics.metric_math)."""

from __future__ import annotations

from typing import Any

from greenshift.metrics import stats
from greenshift.metrics.alarms import AlarmSpec, PeriodValue
from greenshift.metrics.judge import Counts, error_z, latency_z
from greenshift.metrics.metric_math import (
    MetricMathError,
    Query,
    evaluate_alarm,
    judge_of,
    parse,
)
from greenshift.metrics.stats import Aggregate, bucketize, period_start
from greenshift.metrics.store import MetricStore

MATH_STATISTIC = "Average"  # what StateReasonData names for an expression's value


def queries_of(definition: dict[str, Any]) -> list[Query]:
    return [
        Query(id=q["Id"], expression=q.get("Expression"), return_data=q.get("ReturnData", True))
        for q in definition["Metrics"]
    ]


def check_metrics(metrics: list[dict[str, Any]]) -> str | None:
    """Why PutMetricAlarm's `Metrics` cannot be evaluated, or None when it can."""
    ids = [q["Id"] for q in metrics]
    if len(set(ids)) != len(ids):
        return "The values for parameter id in Metrics are not unique."
    returned = [q for q in metrics if q.get("ReturnData", True)]
    if len(returned) != 1:
        return "Exactly one element of the metrics list should return data."
    periods = set()
    for q in metrics:
        if (q.get("MetricStat") is None) == (q.get("Expression") is None):
            return f"Exactly one of MetricStat and Expression must be set (metric {q['Id']})."
        if q.get("MetricStat") is not None:
            ms = q["MetricStat"]
            if not stats.is_statistic(ms["Stat"]):
                return f"The statistic {ms['Stat']} is not supported."
            if not stats.is_valid_alarm_period(int(ms["Period"])):
                return f"The Period of metric {q['Id']} must be 10, 20, 30 or a multiple of 60."
            periods.add(int(ms["Period"]))
        else:
            try:
                parse(q["Expression"])
            except MetricMathError as error:
                return f"Metric {q['Id']}: {error}"
    if len(periods) != 1:
        return "Every MetricStat of a metric-math alarm must have the same Period."
    try:
        judged = _judge(metrics)
    except MetricMathError as error:
        return str(error)
    if judged is not None:
        stats_ids = {q["Id"] for q in metrics if q.get("MetricStat") is not None}
        if not {judged[1], judged[2]} <= stats_ids:
            return f"{judged[0]} compares two MetricStat ids of the alarm."
        return None
    try:
        evaluate_alarm(queries_of({"Metrics": metrics}), _zeros(metrics), 1)
    except MetricMathError as error:
        return str(error)
    return None


def _judge(metrics: list[dict[str, Any]]) -> tuple[str, str, str] | None:
    returned = next(q for q in metrics if q.get("ReturnData", True))
    if returned.get("Expression") is None:
        return None
    return judge_of(parse(returned["Expression"]))


def _zeros(metrics: list[dict[str, Any]]) -> dict[str, list[float | None]]:
    return {q["Id"]: [0.0] for q in metrics if q.get("MetricStat") is not None}


def math_alarm_spec(name: str, d: dict[str, Any]) -> AlarmSpec:
    evaluation_periods = int(d["EvaluationPeriods"])
    period = next(int(q["MetricStat"]["Period"]) for q in d["Metrics"] if q.get("MetricStat"))
    returned = next(q["Id"] for q in d["Metrics"] if q.get("ReturnData", True))
    return AlarmSpec(
        name=name,
        namespace="",
        metric_name=returned,
        dimensions=(),
        statistic=MATH_STATISTIC,
        period=period,
        evaluation_periods=evaluation_periods,
        datapoints_to_alarm=int(d.get("DatapointsToAlarm") or evaluation_periods),
        threshold=float(d["Threshold"]),
        comparison=d["ComparisonOperator"],
        treat_missing=d.get("TreatMissingData") or "missing",
    )


def math_windows(
    store: MetricStore, definition: dict[str, Any], spec: AlarmSpec, now: float, settle: int
) -> tuple[list[PeriodValue], list[PeriodValue]]:
    """(closed window, early window) as the evaluator's `windows`, for the expression's value."""
    p, n = spec.period, spec.evaluation_periods
    closed_end = period_start(int(now) - settle, p)
    first = closed_end - n * p
    starts = [first + i * p for i in range(n + 1)]
    series: dict[str, list[float | None]] = {}
    raw: dict[str, dict[int, Aggregate]] = {}
    counts = [0.0] * len(starts)
    for q in definition["Metrics"]:
        ms = q.get("MetricStat")
        if ms is None:
            continue
        metric = ms["Metric"]
        dims = {x["Name"]: x["Value"] for x in metric.get("Dimensions") or []}
        seconds = store.seconds(
            metric["Namespace"], metric["MetricName"], dims, first, int(now) + 1
        )
        buckets = bucketize(seconds, first, closed_end + p, p)
        raw[q["Id"]] = buckets
        values: list[float | None] = []
        for i, start in enumerate(starts):
            agg = buckets.get(start)
            values.append(None if agg is None or agg.empty else agg.statistic(ms["Stat"]))
            counts[i] += 0.0 if agg is None else agg.count
        series[q["Id"]] = values
    judged = _judge(definition["Metrics"])
    if judged is not None:
        points = _judge_points(judged, raw, starts)
        return points[:n], points[1:]
    result = evaluate_alarm(queries_of(definition), series, len(starts))
    points = [PeriodValue(s, v, c) for s, v, c in zip(starts, result, counts, strict=True)]
    return points[:n], points[1:]


def _judge_points(
    judged: tuple[str, str, str], raw: dict[str, dict[int, Aggregate]], starts: list[int]
) -> list[PeriodValue]:
    """Sequential: each period's value is the judge's z over everything from the first period
    of the range up to and including it."""
    kind, new_id, old_id = judged
    new, old = Aggregate(), Aggregate()
    points = []
    for start in starts:
        for acc, source in ((new, raw[new_id]), (old, raw[old_id])):
            agg = source.get(start)
            if agg is not None and not agg.empty:
                acc.count += agg.count
                acc.sum += agg.sum
                acc.sample.extend(agg.sample)
        if kind == "ERROR_JUDGE":
            z = error_z(Counts(new.count, new.sum), Counts(old.count, old.sum))
        else:
            z = latency_z(new.sample, old.sample)
        points.append(PeriodValue(start, z, new.count))
    return points
