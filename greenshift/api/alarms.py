"""The "does this alarm exist?" lookup when alarms live in this process (ports.AlarmSource).

The control API serves the CloudWatch subset on its own port, so it asks the CloudWatch handler
directly instead of calling itself over HTTP. Pointed at real CloudWatch
(`GREENSHIFT_CLOUDWATCH_ENDPOINT_URL`), the server uses the metrics package's boto3-based
`CloudWatchAlarmSource` instead.
"""

from __future__ import annotations

from typing import Any

from greenshift.ports import AlarmState

BATCH = 100  # DescribeAlarms takes at most 100 AlarmNames


class LocalAlarmSource:
    def __init__(self, cloudwatch: Any) -> None:
        self.cloudwatch = cloudwatch  # greenshift.metrics.cloudwatch_api.CloudWatchApi

    def states(self, names: list[str]) -> dict[str, AlarmState]:
        wanted = list(dict.fromkeys(names))
        found: dict[str, AlarmState] = {}
        for i in range(0, len(wanted), BATCH):
            answer = self.cloudwatch.handle_sync(
                "DescribeAlarms",
                {
                    "AlarmNames": wanted[i : i + BATCH],
                    "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
                    "MaxRecords": 100,
                },
            )
            for alarm in answer.get("MetricAlarms", []) + answer.get("CompositeAlarms", []):
                found[alarm["AlarmName"]] = AlarmState(
                    name=alarm["AlarmName"],
                    state=alarm.get("StateValue", "INSUFFICIENT_DATA"),
                    reason=alarm.get("StateReason", ""),
                )
        return found
