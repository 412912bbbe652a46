"""Alarm evaluation semantics, one test per rule (alarms.py, pure)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from greenshift.metrics.alarms import (
    ALARM,
    INSUFFICIENT_DATA,
    OK,
    AlarmSpec,
    PeriodValue,
    decide,
    evaluate,
)

SPEC = AlarmSpec(
    name="errors",
    namespace="AWS/SageMaker",
    metric_name="Invocation5XXErrors",
    dimensions=(("EndpointName", "ep"), ("VariantName", "v")),
    statistic="Sum",
    period=10,
    evaluation_periods=3,
    datapoints_to_alarm=2,
    threshold=1.0,
    comparison="GreaterThanOrEqualToThreshold",
)


def window(*values: float | None) -> list[PeriodValue]:
    """Oldest first, one value per 10 s period; None is missing."""
    return [
        PeriodValue(100 + 10 * i, v, 1.0 if v is not None else 0.0) for i, v in enumerate(values)
    ]


def test_m_of_n_alarms_on_m_breaches_anywhere_in_the_window() -> None:
    assert decide(SPEC, OK, window(5, 0, 5)) == ALARM
    assert decide(SPEC, OK, window(0, 5, 0)) == OK
    assert decide(replace(SPEC, datapoints_to_alarm=3), OK, window(5, 0, 5)) == OK


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("GreaterThanOrEqualToThreshold", [False, True, True]),
        ("GreaterThanThreshold", [False, False, True]),
        ("LessThanThreshold", [True, False, False]),
        ("LessThanOrEqualToThreshold", [True, True, False]),
    ],
)
def test_each_comparison_operator(operator: str, expected: list[bool]) -> None:
    spec = replace(SPEC, comparison=operator, evaluation_periods=1, datapoints_to_alarm=1)
    got = [decide(spec, OK, window(v)) == ALARM for v in (0.5, 1.0, 1.5)]
    assert got == expected


def test_missing_all_missing_is_insufficient_data() -> None:
    assert decide(SPEC, ALARM, window(None, None, None)) == INSUFFICIENT_DATA


def test_missing_few_present_follow_the_present_ones() -> None:
    # AWS's table: "- - X" with M=2 and TreatMissingData=missing goes to ALARM.
    assert decide(SPEC, OK, window(None, None, 5)) == ALARM
    assert decide(SPEC, ALARM, window(None, None, 0)) == OK


def test_enough_present_datapoints_ignore_treat_missing() -> None:
    for mode in ("missing", "notBreaching", "breaching", "ignore"):
        spec = replace(SPEC, treat_missing=mode)
        assert decide(spec, OK, window(5, None, 5)) == ALARM
        assert decide(spec, ALARM, window(0, None, 5)) == OK


def test_not_breaching_fills_missing_as_good() -> None:
    spec = replace(SPEC, treat_missing="notBreaching")
    assert decide(spec, ALARM, window(None, None, None)) == OK
    assert decide(spec, OK, window(None, None, 5)) == OK


def test_breaching_fills_missing_as_bad() -> None:
    spec = replace(SPEC, treat_missing="breaching")
    assert decide(spec, OK, window(None, None, None)) == ALARM
    assert decide(spec, OK, window(None, None, 0)) == ALARM
    assert decide(replace(spec, datapoints_to_alarm=3), OK, window(None, 0, 0)) == OK


def test_ignore_keeps_the_current_state() -> None:
    spec = replace(SPEC, treat_missing="ignore")
    for state in (OK, ALARM, INSUFFICIENT_DATA):
        assert decide(spec, state, window(None, None, None)) == state
        assert decide(spec, state, window(None, None, 5)) == state
    assert decide(spec, ALARM, window(None, None, 0)) == OK


def test_percentile_statistic_is_compared_like_any_value() -> None:
    spec = replace(
        SPEC, statistic="p99", threshold=100000.0, evaluation_periods=1, datapoints_to_alarm=1
    )
    result = evaluate(spec, OK, window(150000.0), now=200.0)
    assert result.state == ALARM
    data = json.loads(result.reason_data)
    assert data["extendedStatistic"] == "p99" and "statistic" not in data


def test_reason_and_reason_data_look_like_cloudwatch() -> None:
    result = evaluate(SPEC, OK, window(0, 3, 2), now=200.0)
    assert result.state == ALARM
    assert result.reason.startswith("Threshold Crossed: 2 out of the last 3 datapoints [2.0 (")
    assert "greater than or equal to the threshold (1.0)" in result.reason
    assert "(minimum 2 datapoints for OK -> ALARM transition)" in result.reason
    data = json.loads(result.reason_data)
    assert data["version"] == "1.0" and data["statistic"] == "Sum" and data["period"] == 10
    assert data["recentDatapoints"] == [2, 3, 0]  # newest first
    assert data["threshold"] == 1.0
    assert [d["value"] for d in data["evaluatedDatapoints"]] == [2, 3, 0]


def test_ok_reason_names_the_datapoints_that_did_not_cross() -> None:
    result = evaluate(SPEC, ALARM, window(0, 0, 5), now=200.0)
    assert result.state == OK
    assert "2 out of the last 3 datapoints" in result.reason and "were not" in result.reason


def test_reason_data_stays_within_aws_limit() -> None:
    spec = replace(SPEC, evaluation_periods=1000, datapoints_to_alarm=1000)
    result = evaluate(spec, OK, window(*([123456.789] * 1000)), now=1e5)
    assert len(result.reason_data) <= 4000
