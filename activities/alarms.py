"""Alarm activities: the pull check a deployment makes before its first instance and at the end
of every bake, so an alarm in ALARM can never pass even if the watcher's signal was lost."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from activities.errors import business_errors
from activities.models import AlarmCheckInput, AlarmCheckResult
from greenshift.metrics.verdicts import JudgeSource
from greenshift.names import CHECK_ALARMS
from greenshift.ports import AlarmSource, AlarmState

ALARM = "ALARM"


class AlarmActivities:
    """`stale_after_seconds`: an alarm whose evaluation is older than this is reported stale
    (None: never); states that carry no evaluation time (real CloudWatch) are never stale.
    `judges`: the built-in judge source, asked which alarms are judges (None: no judge)."""

    def __init__(
        self,
        alarms: AlarmSource,
        stale_after_seconds: float | None = None,
        judges: JudgeSource | None = None,
    ) -> None:
        self.alarms = alarms
        self.stale_after = stale_after_seconds
        self.judges = judges

    @activity.defn(name=CHECK_ALARMS)
    @business_errors
    def check_alarms(self, data: AlarmCheckInput) -> AlarmCheckResult:
        if not data.alarms:
            return AlarmCheckResult()
        states = self.alarms.states(list(data.alarms))
        tripped = next(
            (
                states[name]
                for name in data.alarms
                if name in states and states[name].state == ALARM
            ),
            None,
        )
        ages = stale_ages(states, datetime.now(UTC), self.stale_after)
        return AlarmCheckResult(
            tripped=tripped,
            states={name: s.state for name, s in states.items()},
            stale=sorted(ages),
            stale_seconds=max(ages.values(), default=0.0),
            judges=self._judge_alarms(list(data.alarms)) if data.judges else None,
        )

    def _judge_alarms(self, names: list[str]) -> list[str] | None:
        """The judges among `names`; None when the judge source cannot say, so the bake judges
        as if all were (and a judge that cannot be read fails closed there)."""
        if self.judges is None:
            return []
        try:
            return self.judges.judge_alarms(names)
        except Exception:  # whatever the store raised: judging decides, and fails closed
            activity.logger.warning("could not tell the judge alarms apart", exc_info=True)
            return None


def stale_ages(
    states: dict[str, AlarmState], now: datetime, stale_after: float | None
) -> dict[str, float]:
    """Alarm name -> seconds since its last evaluation, for those older than `stale_after`."""
    if stale_after is None:
        return {}
    ages = {
        name: (now - s.evaluated_at).total_seconds()
        for name, s in states.items()
        if s.evaluated_at is not None
    }
    return {name: age for name, age in ages.items() if age > stale_after}
