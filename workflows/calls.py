"""Calling an activity, or a local one, with its ActivityOptions (workflows/options.py). Both
fail the same way: a local activity's failure comes as its own error, not wrapped in
ActivityError as an activity's is; wrapped here, callers tell step failures from their own bugs
the same way for both (workflows/inputs.py reads them)."""

from __future__ import annotations

from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, CancelledError, FailureError

with workflow.unsafe.imports_passed_through():
    from workflows import options

T = TypeVar("T")


async def run_activity(
    name: str, arg: Any, opts: options.ActivityOptions, result_type: type[T] | None = None
) -> T:
    """`name` as an activity with `opts`."""
    result: T = await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=opts.start_to_close,
        heartbeat_timeout=opts.heartbeat,
        retry_policy=opts.retry(),
    )
    return result


async def run_local(
    name: str, arg: Any, opts: options.ActivityOptions, result_type: type[T] | None = None
) -> T:
    """`name` as a local activity with `opts` (its heartbeat timeout does not apply: the
    workflow task's own timeout tells a dead worker); a failure raises ActivityError."""
    try:
        result: T = await workflow.execute_local_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=opts.start_to_close,
            retry_policy=opts.retry(),
        )
    except FailureError as failure:
        if isinstance(failure, CancelledError):
            raise
        raise ActivityError(
            f"Local activity {name} failed",
            scheduled_event_id=0,
            started_event_id=0,
            identity="",
            activity_type=name,
            activity_id="",
            retry_state=None,
        ) from failure
    return result
