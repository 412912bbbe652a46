"""The alarm evaluation loop: every second, every alarm, against the metric store.

Which periods are evaluated (the decision behind fast rollbacks):
- A period counts as complete `SETTLE_SECONDS` after it ends, the time the collector needs to
  deliver its last second. The last N complete periods are evaluated, as CloudWatch does when a
  period closes.
- **(our rule)** Early alarm: the period still in progress is looked at too. When it already has
  data that breaches and the window ending with it calls for ALARM, the alarm goes to ALARM now
  instead of when the period closes (and stays ALARM while it does). Only ALARM is taken early, so
  a deployment reacts within about a second of the first bad datapoint while a recovery is still
  judged on closed periods. With a 10 s period this saves up to 10 s of bad traffic.

A state changes only when the evaluation calls for a different state than the current one, so a
`SetAlarmState` holds until the data disagrees with it, as on AWS. The write is a compare-and-set
on the state's timestamp: an evaluation that raced a SetAlarmState is dropped and redone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from greenshift.metrics.alarms import (
    ALARM,
    AlarmSpec,
    Evaluation,
    PeriodValue,
    breaches,
    decide,
    evaluate,
)
from greenshift.metrics.math_alarms import math_alarm_spec, math_windows
from greenshift.metrics.stats import bucketize, period_start
from greenshift.metrics.store import AlarmRow, MetricStore
from greenshift.settings import Settings

log = logging.getLogger(__name__)

SETTLE_SECONDS = 2
PRUNE_EVERY_SECONDS = 60.0


def alarm_spec(row: AlarmRow) -> AlarmSpec:
    """The evaluation view of a stored PutMetricAlarm request (validated when it was put)."""
    d = row.definition
    if d.get("Metrics"):
        return math_alarm_spec(row.name, d)
    evaluation_periods = int(d["EvaluationPeriods"])
    return AlarmSpec(
        name=row.name,
        namespace=d["Namespace"],
        metric_name=d["MetricName"],
        dimensions=tuple(sorted((x["Name"], x["Value"]) for x in d.get("Dimensions") or [])),
        statistic=d.get("Statistic") or d["ExtendedStatistic"],
        period=int(d["Period"]),
        evaluation_periods=evaluation_periods,
        datapoints_to_alarm=int(d.get("DatapointsToAlarm") or evaluation_periods),
        threshold=float(d["Threshold"]),
        comparison=d["ComparisonOperator"],
        treat_missing=d.get("TreatMissingData") or "missing",
    )


@dataclass(frozen=True)
class Windows:
    """The closed window (last N complete periods) and the early one (ending with the period in
    progress), each oldest first."""

    closed: list[PeriodValue]
    early: list[PeriodValue]


def windows(store: MetricStore, spec: AlarmSpec, now: float) -> Windows:
    p, n = spec.period, spec.evaluation_periods
    closed_end = period_start(int(now) - SETTLE_SECONDS, p)
    first = closed_end - n * p
    seconds = store.seconds(
        spec.namespace, spec.metric_name, dict(spec.dimensions), first, int(now) + 1
    )
    buckets = bucketize(seconds, first, closed_end + p, p)

    def value(start: int) -> PeriodValue:
        agg = buckets.get(start)
        if agg is None or agg.empty:
            return PeriodValue(start, None)
        return PeriodValue(start, agg.statistic(spec.statistic), agg.count)

    starts = [first + i * p for i in range(n + 1)]
    values = [value(s) for s in starts]
    return Windows(closed=values[:n], early=values[1:])


def evaluate_row(store: MetricStore, row: AlarmRow, now: float) -> Evaluation:
    """What the alarm's data calls for now (module docstring for the windows)."""
    spec = alarm_spec(row)
    if row.definition.get("Metrics"):
        w = Windows(*math_windows(store, row.definition, spec, now, SETTLE_SECONDS))
    else:
        w = windows(store, spec, now)
    partial = w.early[-1]
    if (
        partial.value is not None
        and breaches(spec, partial.value)
        and decide(spec, row.state_value, w.early) == ALARM
    ):
        return evaluate(spec, row.state_value, w.early, now)
    return evaluate(spec, row.state_value, w.closed, now)


def evaluate_all(store: MetricStore, now: float | None = None) -> list[tuple[str, str, str]]:
    """Evaluate every alarm once; returns the transitions made as (name, old, new)."""
    now = time.time() if now is None else now
    changes = []
    evaluated: list[str] = []
    for row in store.alarms.all():
        try:
            result = evaluate_row(store, row, now)
        except Exception:  # one broken alarm must not stop the others
            log.exception("evaluating alarm %s", row.name)
            continue
        evaluated.append(row.name)
        if result.state == row.state_value:
            continue
        if store.alarms.set_state(
            row.name,
            result.state,
            result.reason,
            result.reason_data,
            now,
            expect_updated=row.state_updated,
        ):
            log.info(
                "alarm %s: %s -> %s: %s", row.name, row.state_value, result.state, result.reason
            )
            changes.append((row.name, row.state_value, result.state))
    # Every round, changed or not: a deployment tells a hung evaluator from a quiet one by this.
    store.alarms.mark_evaluated(evaluated, now)
    return changes


async def run_evaluator(
    settings: Settings,
    stop_event: asyncio.Event,
    interval_seconds: float = 1.0,
    store: MetricStore | None = None,
    heartbeat: Callable[[], None] | None = None,
) -> None:
    """Evaluate all alarms every `interval_seconds` until `stop_event` is set; prune the store
    every minute. Database work runs in a thread so the loop stays responsive. `heartbeat` is
    called after every round (so a stuck evaluator stops touching it)."""
    own = store is None
    store = store or MetricStore(settings.registry_url)
    last_prune = 0.0
    try:
        while not stop_event.is_set():
            started = time.monotonic()
            try:
                await asyncio.to_thread(evaluate_all, store)
                if started - last_prune >= PRUNE_EVERY_SECONDS:
                    await asyncio.to_thread(store.prune)
                    last_prune = started
            except Exception:
                log.exception("alarm evaluation round failed")
            if heartbeat is not None:
                await asyncio.to_thread(heartbeat)
            remaining = interval_seconds - (time.monotonic() - started)
            try:
                await asyncio.wait_for(stop_event.wait(), timeout=max(remaining, 0.05))
            except TimeoutError:
                pass
    finally:
        if own:
            store.close()
