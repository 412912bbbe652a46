"""The judge's verdict over a bake, read from the metric store (a `verdicts.JudgeSource`).

The alarm evaluator judges over the alarm's range (EvaluationPeriods x Period), which slides: a
canary with little traffic may never collect `MIN_REQUESTS` in it. A bake's verdict is taken
over the whole deployment so far, from the alarm's range before it started: waiting longer then
really does bring the new fleet more data, and the old fleet's baseline still counts after all
traffic has moved off it (the second bake of a canary, the bake of an all-at-once shift). Alarms
that are not judge alarms, or do not exist, are left out.

At most the last `MAX_LOOKBACK_SECONDS` are read: that still holds a canary's two bakes, its
final bake and their extensions at their longest (an hour each), and bounds a look's cost in an
8-hour deployment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from greenshift.metrics.alarms import breaches
from greenshift.metrics.judge import MIN_REQUESTS, Counts, error_z, latency_z, median
from greenshift.metrics.math_alarms import math_alarm_spec
from greenshift.metrics.metric_math import MetricMathError, judge_of, parse
from greenshift.metrics.stats import Aggregate
from greenshift.metrics.store import MetricStore
from greenshift.metrics.verdicts import JudgeInput, Outcome, Verdict

MAX_LOOKBACK_SECONDS = 4 * 3600


class StoreJudgeSource:
    def __init__(self, store: MetricStore) -> None:
        self.store = store

    def judge_alarms(self, names: list[str]) -> list[str]:
        found = []
        for name in dict.fromkeys(names):
            row = self.store.alarms.get(name)
            if row is not None and _judge_call(row.definition) is not None:
                found.append(name)
        return found

    def verdicts(self, request: JudgeInput, now: datetime) -> list[Verdict]:
        found = []
        since = request.since
        for name in dict.fromkeys(request.alarms):
            row = self.store.alarms.get(name)
            if row is None or not row.definition.get("Metrics"):
                continue
            verdict = self._verdict(name, row.definition, since.timestamp(), now.timestamp())
            if verdict is not None:
                found.append(verdict)
        return found

    def _verdict(
        self, name: str, definition: dict[str, Any], since: float, now: float
    ) -> Verdict | None:
        judged = _judge_call(definition)
        if judged is None:
            return None
        metrics = definition["Metrics"]
        kind, new_id, old_id = judged
        spec = math_alarm_spec(name, definition)
        start = int(
            max(min(since, now) - spec.period * spec.evaluation_periods, now - MAX_LOOKBACK_SECONDS)
        )
        by_id = {q["Id"]: q for q in metrics}
        new = self._aggregate(by_id.get(new_id), start, int(now) + 1)
        old = self._aggregate(by_id.get(old_id), start, int(now) + 1)
        return verdict_of(name, kind, new, old, spec.threshold, lambda z: breaches(spec, z))

    def _aggregate(self, query: dict[str, Any] | None, start: int, end: int) -> Aggregate:
        total = Aggregate()
        if query is None or query.get("MetricStat") is None:
            return total
        metric = query["MetricStat"]["Metric"]
        dims = {x["Name"]: x["Value"] for x in metric.get("Dimensions") or []}
        for s in self.store.seconds(metric["Namespace"], metric["MetricName"], dims, start, end):
            total.add(s.count, s.sum, s.minimum, s.maximum, s.values)
        return total


def verdict_of(
    alarm: str,
    kind: str,
    new: Aggregate,
    old: Aggregate,
    threshold: float,
    breaching: Any,
) -> Verdict:
    """The verdict and its words from both fleets' aggregates (pure)."""
    if kind == "ERROR_JUDGE":
        z = error_z(Counts(new.count, new.sum), Counts(old.count, old.sum))
        new_value: float | None = new.sum / new.count if new.count else None
        old_value: float | None = old.sum / old.count if old.count else None
        figures = (
            f"new {_rate(new_value)} errors of {new.count:.0f} requests vs old "
            f"{_rate(old_value)} of {old.count:.0f}"
        )
    else:
        z = latency_z(new.sample, old.sample)
        new_value = median(new.sample) if new.sample else None
        old_value = median(old.sample) if old.sample else None
        figures = (
            f"new median {_micros(new_value)} over {new.count:.0f} requests vs old "
            f"{_micros(old_value)} over {old.count:.0f}"
        )
    if z is None:
        outcome = Outcome.LACKS_DATA
        words = f"not enough data ({figures}; {MIN_REQUESTS:.0f} on each fleet needed)"
    elif breaching(z):
        outcome = Outcome.FAIL
        words = f"the new fleet is worse ({figures}, z {z:.2f} > {threshold:g})"
    else:
        outcome = Outcome.PASS
        words = f"no worse ({figures}, z {z:.2f} within {threshold:g})"
    return Verdict(
        alarm=alarm,
        judge=kind,
        outcome=outcome,
        z=z,
        threshold=threshold,
        new_requests=new.count,
        old_requests=old.count,
        new_value=new_value,
        old_value=old_value,
        min_requests=MIN_REQUESTS,
        message=f"{alarm} ({kind}): {words}",
    )


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _micros(value: float | None) -> str:
    return "-" if value is None else f"{value / 1000:.1f} ms"


def _judge_call(definition: dict[str, Any]) -> tuple[str, str, str] | None:
    """(judge, new id, old id) when the alarm's returned metric is a judge call, else None."""
    metrics = definition.get("Metrics") or []
    returned = next((q for q in metrics if q.get("ReturnData", True)), None)
    if returned is None or returned.get("Expression") is None:
        return None
    try:
        return judge_of(parse(returned["Expression"]))
    except MetricMathError:
        return None
