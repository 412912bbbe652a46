"""The rehearsal's pure parts: reading fault specs, and instance usage over a timeline."""

from __future__ import annotations

import pytest

from greenshift.simulate.faults import (
    AlarmFault,
    DeadlineFault,
    FaultError,
    StartFault,
    parse_fault,
)
from greenshift.simulate.report import instance_usage


def test_fault_specs() -> None:
    assert parse_fault("alarm:bake=2,at=420") == AlarmFault(bake=2, at=420.0)
    assert parse_fault("alarm: bake=1, at=0.5, name=x") == AlarmFault(1, 0.5, "x")
    assert parse_fault("start-fails:batch=7") == StartFault(provision=7)
    assert parse_fault("start-fails:provision=1") == StartFault(provision=1)
    assert parse_fault("deadline:step=3") == DeadlineFault(step=3)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("alarm:bake=2", "at is missing"),
        ("alarm:bake=0,at=1", "from 1"),
        ("alarm:bake=1,at=-1", "finite"),
        ("alarm:bake=1,at=inf", "finite"),
        ("alarm:bake=1,at=1,when=now", "unknown key"),
        ("explode:now=1", "unknown kind"),
        ("deadline:step", "key=value"),
        ("start-fails:batch=x", "invalid literal"),
    ],
)
def test_bad_fault_specs_say_why(spec: str, says: str) -> None:
    with pytest.raises(FaultError, match=says):
        parse_fault(spec)


def test_instance_usage_integrates_sizes_over_time() -> None:
    # 2 old for an hour, then 2 new join for half an hour, then the old go.
    changes = [(3600.0, "new", 2), (5400.0, "old", 0)]
    peak, hours = instance_usage({"old": 2}, changes, end=7200.0)
    assert peak == 4
    assert hours == pytest.approx(2 * 1 + 4 * 0.5 + 2 * 0.5)


def test_instance_usage_clamps_changes_to_the_run() -> None:
    peak, hours = instance_usage({"a": 1}, [(-5.0, "b", 1), (99999.0, "b", 0)], end=3600.0)
    assert peak == 2
    assert hours == pytest.approx(2.0)
