"""ReplaceInstances: a lost host's share of one fleet launched again on the hosts left.

Started by the healer (greenshift.hosts.healer) with the id `replace/<fleet id>`, so however many
workers notice the loss, one replacement runs per fleet at a time. It places the fleet's stored
desired count over the alive hosts (running instances stay where they are) and waits for each
host's share to be healthy; a deployment running meanwhile keeps its own steps, which are
absolute too, so whichever runs last leaves the fleet at its desired count.

A failed attempt (no host has room, a launch that fails, a host that stops polling) is tried
again after a durable timer with exponential backoff, so a worker killed while it waits changes
nothing: another worker replays the history and goes on from the same attempt. After the last
attempt it gives up with a `ReplacementAbandoned` event that says why, and fails with that
reason; the healer starts it again once a host joins (greenshift.hosts.healer). Every outcome is
an event in the log of the fleet's deployment.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from greenshift.hosts import replacement
    from greenshift.hosts.messages import HostEventInput, ReplaceInput, ReplaceResult
    from greenshift.names import RECORD_HOST_EVENT, REPLACE_INSTANCES
    from greenshift.ports import FleetStatus
    from workflows import hosts, options

# Histories recorded before retries existed replay the single attempt they made.
RETRY_PATCH = "replace-retry"


@workflow.defn(name=REPLACE_INSTANCES)
class ReplaceInstances:
    @workflow.run
    async def run(self, data: ReplaceInput) -> Any:
        if not workflow.patched(RETRY_PATCH):
            return await _attempt(data)
        cause = ""
        for attempt in range(1, data.attempts + 1):
            try:
                status = await _attempt(data)
            except ActivityError as error:
                cause = _cause(error)
            else:
                if status is None:  # no host registered any more, or the fleet retired
                    return None
                if status.healthy >= status.desired and not status.failed:
                    await _event(
                        data,
                        replacement.INSTANCES_REPLACED,
                        replacement.replaced_message(
                            data.fleet_id, status.healthy, status.desired, attempt
                        ),
                        attempt,
                    )
                    return ReplaceResult(
                        fleet_id=data.fleet_id,
                        attempts=attempt,
                        healthy=status.healthy,
                        desired=status.desired,
                    )
                cause = f"{status.healthy} of {status.desired} instance(s) healthy."
            if attempt == data.attempts:
                break
            wait = replacement.backoff(
                attempt, data.first_backoff_seconds, data.max_backoff_seconds
            )
            await _event(
                data,
                replacement.REPLACEMENT_RETRYING,
                replacement.retrying_message(data.fleet_id, attempt, data.attempts, cause, wait),
                attempt,
            )
            await workflow.sleep(timedelta(seconds=wait))
        message = replacement.abandoned_message(data.fleet_id, data.lost_host, data.attempts, cause)
        await _event(data, replacement.REPLACEMENT_ABANDONED, message, data.attempts)
        raise ApplicationError(message, type=replacement.REPLACEMENT_ABANDONED, non_retryable=True)


async def _attempt(data: ReplaceInput) -> FleetStatus | None:
    async def nothing() -> None:
        return None  # no host registered any more: nothing to replace onto

    status: FleetStatus | None = await hosts.scale_fleet(
        data.fleet_id, 0, True, options.provision(600), nothing, replace=True
    )
    return status


def _cause(error: ActivityError) -> str:
    """The innermost failure's type and words (ResourceLimitExceeded: The hosts can hold ...)."""
    inner: BaseException = error
    while inner.__cause__ is not None:
        inner = inner.__cause__
    if isinstance(inner, ApplicationError) and inner.type:
        return f"{inner.type}: {inner.message}"
    return str(inner) or type(inner).__name__


async def _event(data: ReplaceInput, type_: str, message: str, attempt: int) -> None:
    key = f"{workflow.info().workflow_id}/{workflow.info().run_id}/{type_}/{attempt}"
    await workflow.execute_activity(
        RECORD_HOST_EVENT,
        HostEventInput(
            fleet_id=data.fleet_id,
            type=type_,
            message=message,
            key=key,
            detail={"lost_host": data.lost_host, "attempt": attempt},
        ),
        start_to_close_timeout=options.REGISTRY.start_to_close,
        retry_policy=options.REGISTRY.retry(),
    )
