"""Alarm states for deployments, read through a boto3 `cloudwatch` client (ports.AlarmSource).

The same code reads Greenshift's own alarms (the client points at the control API,
`settings.alarms_endpoint_url`) or real CloudWatch alarms (no endpoint URL, a region and the
usual AWS credential chain): the deployment cannot tell the difference, which is the point.
Set `GREENSHIFT_CLOUDWATCH_ENDPOINT_URL=aws` to read real CloudWatch.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from greenshift.ports import AlarmState
from greenshift.settings import Settings

# DescribeAlarms takes at most 100 AlarmNames per call.
BATCH = 100
REAL_AWS = "aws"


def cloudwatch_client(settings: Settings) -> Any:
    """A boto3 cloudwatch client for the configured alarm source."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=10
    )
    if settings.cloudwatch_endpoint_url == REAL_AWS:
        return boto3.client("cloudwatch", region_name=settings.region, config=config)
    key, secret = "greenshift", "greenshift"
    if settings.access_keys:
        first = settings.access_keys.split(",")[0]
        key, _, secret = first.partition(":")
    return boto3.client(
        "cloudwatch",
        endpoint_url=settings.alarms_endpoint_url,
        region_name=settings.region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=config,
    )


class CloudWatchAlarmSource:
    """`states(names)` through DescribeAlarms, 100 names per call; missing names left out.

    Takes a client, or a factory called once on first use (boto3 clients are thread-safe, and
    creating one is slow, so it is built once and kept).
    """

    def __init__(self, client: Any | Callable[[], Any]) -> None:
        # A boto3 client is not callable; a factory is.
        self._factory: Callable[[], Any] | None = client if callable(client) else None
        self._client: Any = None if callable(client) else client

    @classmethod
    def from_settings(cls, settings: Settings) -> CloudWatchAlarmSource:
        return cls(lambda: cloudwatch_client(settings))

    @property
    def client(self) -> Any:
        if self._client is None:
            assert self._factory is not None
            self._client = self._factory()
        return self._client

    def states(self, names: list[str]) -> dict[str, AlarmState]:
        wanted = list(dict.fromkeys(names))
        found: dict[str, AlarmState] = {}
        for i in range(0, len(wanted), BATCH):
            batch = wanted[i : i + BATCH]
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {"AlarmNames": batch, "MaxRecords": 100}
                if token:
                    kwargs["NextToken"] = token
                # Composite alarms can trip a deployment too: ask for both kinds.
                kwargs["AlarmTypes"] = ["MetricAlarm", "CompositeAlarm"]
                answer = self.client.describe_alarms(**kwargs)
                for alarm in answer.get("MetricAlarms", []) + answer.get("CompositeAlarms", []):
                    found[alarm["AlarmName"]] = AlarmState(
                        name=alarm["AlarmName"],
                        state=alarm["StateValue"],
                        reason=alarm.get("StateReason", ""),
                    )
                token = answer.get("NextToken")
                if not token:
                    break
        return found


class EvaluatedAlarmSource:
    """Greenshift's own alarms: states as `inner` reads them (DescribeAlarms, exactly what a
    client sees), each stamped with when the local evaluator last judged it (from the metric
    store, which shares the registry's database). An alarm the evaluator never judged carries
    the epoch: as stale as can be, never "unknown"."""

    def __init__(self, inner: Any, store: Any) -> None:
        self.inner = inner  # ports.AlarmSource
        self.store = store  # greenshift.metrics.store.MetricStore

    def states(self, names: list[str]) -> dict[str, AlarmState]:
        states: dict[str, AlarmState] = self.inner.states(names)
        times = self.store.alarms.evaluated_at(list(states))
        return {
            name: state.model_copy(
                update={"evaluated_at": datetime.fromtimestamp(times.get(name, 0.0), UTC)}
            )
            for name, state in states.items()
        }
