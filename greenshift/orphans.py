"""Endpoints held by a deployment whose workflow is gone: how to tell, and how to hand one to
`SettleEndpoint` (issue 14 item 10).

Two callers meet such an endpoint: the worker's reconciler, which polls for them, and the API,
whose AbortDeployment may arrive first (an operator who just ran `temporal workflow terminate`
aborts at once). Both must judge the same way and start the same workflow under the same id, so
whichever comes first settles the endpoint and the other joins it; that is why the rule and the
start live here, below both.

The rule (`settle_now`) is pure. A closed run that carries the held deployment's id in its memo
is proof that the deployment's workflow is gone. Anything else (no run under the id, or the
previous deployment's run) may be the moment between the API reserving the endpoint and starting
the workflow, so it counts only once the deployment has been held for a grace period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from activities.models import SettleInput
from greenshift import naming
from greenshift.names import MEMO_DEPLOYMENT_ID, SETTLE_ENDPOINT

SETTLE_WORKFLOW = SETTLE_ENDPOINT
# Seconds a deployment must have been held before a missing workflow counts as gone: the API
# reserves the endpoint a moment before it starts the workflow.
GRACE_SECONDS = 15.0


@dataclass(frozen=True)
class WorkflowState:
    """The latest run under a workflow id, as far as settling cares."""

    status: WorkflowExecutionStatus | None  # None: Temporal has no run under the id
    deployment_id: str | None = None  # the deployment id in the run's memo

    @property
    def running(self) -> bool:
        return self.status is WorkflowExecutionStatus.RUNNING

    @property
    def how(self) -> str:
        return self.status.name if self.status is not None else "NOT_FOUND"


def settle_now(state: WorkflowState, deployment_id: str, held_for: float, grace: float) -> bool:
    """Whether an endpoint held for `held_for` seconds by `deployment_id` may be settled now."""
    if state.running:
        return False
    if state.status is not None and state.deployment_id == deployment_id:
        return True  # this deployment's own run is closed: nothing will ever release it
    return held_for >= grace


def settle_reason(workflow_id: str, how: str) -> str:
    """The FailureReason of a settled endpoint."""
    return (
        f"The workflow {workflow_id} of this deployment ended ({how}) before it settled "
        "the endpoint; Greenshift rolled the endpoint back to the fleet it was serving from."
    )


async def workflow_state(client: Client, workflow_id: str) -> WorkflowState:
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return WorkflowState(None)
        raise
    memo = await description.memo_value(MEMO_DEPLOYMENT_ID, None, type_hint=str)
    return WorkflowState(description.status, memo)


async def start_settle(
    client: Client,
    task_queue: str,
    endpoint: str,
    deployment_id: str,
    reason: str,
    aborted_by: str | None = None,
    abort_reason: str = "",
) -> WorkflowHandle[Any, Any]:
    """Start SettleEndpoint under the endpoint's workflow id, or join the one already running
    (the reconciler and the API may both get there). `aborted_by`: the AbortDeployment that asks
    for it, recorded in the deployment's events."""
    return await client.start_workflow(
        SETTLE_WORKFLOW,
        SettleInput(
            endpoint=endpoint,
            deployment_id=deployment_id,
            reason=reason,
            at=_now(),
            aborted_by=aborted_by,
            abort_reason=abort_reason,
        ),
        id=naming.workflow_id(endpoint),
        task_queue=task_queue,
        memo={MEMO_DEPLOYMENT_ID: deployment_id},
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


def _now() -> datetime:
    return datetime.now(UTC)
