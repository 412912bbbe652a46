"""Alarm evaluation as CloudWatch does it, as pure functions.

Input: an alarm's definition, its current state, and the values of its last `EvaluationPeriods`
periods (None = missing). Output: the state those datapoints call for, with CloudWatch's
`StateReason` text and `StateReasonData` JSON. The evaluator loop (`evaluator.py`) fetches the
values and records transitions; nothing here touches a clock or a database.

Missing data (AWS "Configuring how CloudWatch alarms treat missing data"):
- When at least `DatapointsToAlarm` (M) of the N periods have data, the present datapoints decide
  and TreatMissingData does not matter: ALARM when M of them breach, otherwise OK.
- With fewer present datapoints, missing ones are filled in by TreatMissingData:
  `breaching` counts them as breaching, `notBreaching` as not breaching; `missing` goes to
  INSUFFICIENT_DATA when all are missing, and otherwise follows the present datapoints (ALARM when
  every present one breaches, as AWS's table shows for `- - X - -`); `ignore` keeps the current
  state, except that present datapoints of which none breach give OK.
- **(our rule)** The evaluation range is exactly the last N periods; AWS may look a little further
  back for `missing`/`ignore`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

OK = "OK"
ALARM = "ALARM"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
STATES = (OK, ALARM, INSUFFICIENT_DATA)

TREAT_MISSING = ("missing", "notBreaching", "breaching", "ignore")
COMPARISONS = {
    "GreaterThanOrEqualToThreshold": ("greater than or equal to", lambda v, t: v >= t),
    "GreaterThanThreshold": ("greater than", lambda v, t: v > t),
    "LessThanThreshold": ("less than", lambda v, t: v < t),
    "LessThanOrEqualToThreshold": ("less than or equal to", lambda v, t: v <= t),
}
_LISTED = 20
# Anomaly-detection operators need a band from a model; Greenshift refuses them.
ANOMALY_COMPARISONS = (
    "LessThanLowerOrGreaterThanUpperThreshold",
    "LessThanLowerThreshold",
    "GreaterThanUpperThreshold",
)


@dataclass(frozen=True)
class AlarmSpec:
    """What evaluation needs from a PutMetricAlarm request."""

    name: str
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str  # a standard statistic or a percentile such as p99
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing: str = "missing"


@dataclass(frozen=True)
class PeriodValue:
    """One evaluated period: its start (epoch seconds), value (None = missing), sample count."""

    start: int
    value: float | None
    sample_count: float = 0.0


@dataclass(frozen=True)
class Evaluation:
    state: str
    reason: str
    reason_data: str  # JSON, as in StateReasonData


def breaches(spec: AlarmSpec, value: float) -> bool:
    return bool(COMPARISONS[spec.comparison][1](value, spec.threshold))


def decide(spec: AlarmSpec, current_state: str, values: list[PeriodValue]) -> str:
    """The state the last N periods call for (module docstring for the missing-data rules)."""
    present = [v.value for v in values if v.value is not None]
    missing = len(values) - len(present)
    breaching = sum(1 for v in present if breaches(spec, v))
    m = spec.datapoints_to_alarm
    if len(present) >= m:
        return ALARM if breaching >= m else OK
    mode = spec.treat_missing
    if mode == "breaching":
        return ALARM if breaching + missing >= m else OK
    if mode == "notBreaching":
        return OK
    if not present:
        return INSUFFICIENT_DATA if mode == "missing" else current_state
    if breaching == 0:
        return OK
    if mode == "missing":
        return ALARM if breaching == len(present) else OK
    return current_state  # ignore


def evaluate(
    spec: AlarmSpec, current_state: str, values: list[PeriodValue], now: float
) -> Evaluation:
    """Decide the state and explain it the way CloudWatch does (StateReason, StateReasonData)."""
    state = decide(spec, current_state, values)
    newest_first = sorted(values, key=lambda v: v.start, reverse=True)
    present = [v for v in newest_first if v.value is not None]
    reason = _reason(spec, state, current_state, newest_first, present)
    data = {
        "version": "1.0",
        "queryDate": _iso(now),
        "startDate": _iso(min((v.start for v in values), default=int(now))),
        _statistic_key(spec.statistic): spec.statistic,
        "period": spec.period,
        # Capped so StateReasonData stays within its 4000 characters.
        "recentDatapoints": [v.value for v in present][:_LISTED],
        "threshold": spec.threshold,
        "evaluatedDatapoints": [
            {"timestamp": _iso(v.start), "sampleCount": v.sample_count, "value": v.value}
            if v.value is not None
            else {"timestamp": _iso(v.start)}
            for v in newest_first[:_LISTED]
        ],
    }
    return Evaluation(state=state, reason=reason, reason_data=json.dumps(data))


def _reason(
    spec: AlarmSpec,
    state: str,
    current_state: str,
    newest_first: list[PeriodValue],
    present: list[PeriodValue],
) -> str:
    n = spec.evaluation_periods
    if state == INSUFFICIENT_DATA:
        return f"Insufficient Data: {n} datapoint{'s' if n != 1 else ''} were unknown."
    if not present:
        return f"Missing data in all {n} period(s), treated as {spec.treat_missing}: state {state}."
    words = COMPARISONS[spec.comparison][0]
    crossing = [
        v for v in present if (v.value is not None and breaches(spec, v.value)) == (state == ALARM)
    ]
    shown = ", ".join(f"{_num(v.value)} ({_short(v.start)})" for v in crossing[:5])
    verb = "was" if len(crossing) == 1 else "were"
    negation = "" if state == ALARM else "not "
    return (
        f"Threshold Crossed: {len(crossing)} out of the last {len(newest_first)} datapoints "
        f"[{shown}] {verb} {negation}{words} the threshold ({_num(spec.threshold)}) "
        f"(minimum {spec.datapoints_to_alarm} datapoint"
        f"{'s' if spec.datapoints_to_alarm != 1 else ''} for {current_state} -> {state} "
        f"transition)."
    )[:1023]


def _statistic_key(statistic: str) -> str:
    return "extendedStatistic" if statistic.startswith("p") else "statistic"


def _num(value: float | None) -> str:
    return repr(float(value)) if value is not None else "null"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _short(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%d/%m/%y %H:%M:%S")
