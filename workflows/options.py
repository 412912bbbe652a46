"""Timeouts and retry policies of every activity the workflows call (STYLE.md: every activity
has a start-to-close timeout and a bounded retry policy; long ones heartbeat)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.common import RetryPolicy

# Failures no retry can fix: they are business answers, not accidents.
NON_RETRYABLE = ["ValidationException", "ResourceLimitExceeded", "ProvisionFailed"]


@dataclass(frozen=True)
class ActivityOptions:
    start_to_close: timedelta
    attempts: int
    heartbeat: timedelta | None = None

    def retry(self) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=timedelta(milliseconds=500),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=10),
            maximum_attempts=self.attempts,
            non_retryable_error_types=NON_RETRYABLE,
        )


REGISTRY = ActivityOptions(start_to_close=timedelta(seconds=30), attempts=8)
# Settling the endpoint must outlast a registry outage of a few minutes, or it stays Updating.
FINISH = ActivityOptions(start_to_close=timedelta(seconds=30), attempts=30)
ALARMS = ActivityOptions(start_to_close=timedelta(seconds=20), attempts=5)
TRAFFIC = ActivityOptions(
    start_to_close=timedelta(seconds=120), attempts=5, heartbeat=timedelta(seconds=20)
)
TERMINATE = ActivityOptions(
    start_to_close=timedelta(seconds=300), attempts=5, heartbeat=timedelta(seconds=30)
)
# Rollback steps try harder: giving up means UpdateRollbackFailed.
ROLLBACK_ATTEMPTS = 10


# ModelDataDownloadTimeoutInSeconds when absent (AWS's default, also its maximum).
MODEL_DATA_DOWNLOAD_SECONDS = 3600


def provision(startup_timeout_seconds: int) -> ActivityOptions:
    """Launching may take: the model data (within the download limit), the model's environment
    build (bounded by the startup limit, greenshift.fleet.modelenv), then the whole
    ContainerStartupHealthCheckTimeoutInSeconds, plus slack. The agent heartbeats on a timer
    (every 5 s) through all of them, so the 30 s heartbeat timeout tells a dead worker from a
    slow model, never a slow model from a dead one."""
    budget = MODEL_DATA_DOWNLOAD_SECONDS + 2 * startup_timeout_seconds + 300
    return ActivityOptions(
        start_to_close=timedelta(seconds=budget),
        attempts=3,
        heartbeat=timedelta(seconds=30),
    )
