"""Alarm activities: the pull check a deployment makes before its first instance and at the end
of every bake, so an alarm in ALARM can never pass even if the watcher's signal was lost."""

from __future__ import annotations

from temporalio import activity

from activities.errors import business_errors
from activities.models import CHECK_ALARMS, AlarmCheckInput, AlarmCheckResult
from greenshift.ports import AlarmSource

ALARM = "ALARM"


class AlarmActivities:
    def __init__(self, alarms: AlarmSource) -> None:
        self.alarms = alarms

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
        return AlarmCheckResult(
            tripped=tripped, states={name: s.state for name, s in states.items()}
        )
