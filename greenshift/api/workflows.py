"""Starting and steering deployment workflows, behind one small interface.

Handlers talk to `WorkflowStarter`; the server passes `TemporalStarter`, tests pass a fake, so
the API's tests need no Temporal. Every Temporal failure leaves this module as a GreenshiftError:
an unreachable server is `ServiceUnavailable` (clients retry), a workflow id already running is
`ResourceInUse`, a deployment that is not running is a `ValidationError`.

The deployment id travels to the workflow in its memo (`deployment_id`): the API has already
written the endpoint record and the deployment record under that id, and the workflow's first
activity takes the endpoint with the same id, which the registry treats as idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from greenshift.errors import (
    GreenshiftError,
    ResourceInUse,
    ResourceNotFound,
    ServiceUnavailable,
    ValidationError,
)
from greenshift.names import CONTROL_UPDATES, MEMO_DEPLOYMENT_ID, PROGRESS
from greenshift.settings import Settings

log = logging.getLogger("greenshift.api")


class WorkflowNotRunningError(ValidationError):
    """No open run under the workflow id: nothing to steer (it finished, or is gone)."""


# Updates a running deployment workflow accepts (input {"actor", "reason"}), and its query.
UPDATES = CONTROL_UPDATES
PROGRESS_QUERY = PROGRESS


class WorkflowStarter(Protocol):
    async def start(
        self, workflow: str, request: dict[str, Any], *, workflow_id: str, deployment_id: str
    ) -> None:
        """Start `workflow` (a DESIGN.md workflow type) with the SageMaker request as input."""

    async def update(self, workflow_id: str, update: str, arg: dict[str, Any]) -> Any:
        """Run a workflow update (pause/resume/promote/abort) and return its result."""

    async def query(self, workflow_id: str, query: str) -> Any: ...

    async def abort_orphan(
        self, workflow_id: str, *, endpoint: str, deployment_id: str, held_for: float, arg: Any
    ) -> Any | None:
        """AbortDeployment on an endpoint whose deployment's workflow (`workflow_id`) is not
        running: have it settled (SettleEndpoint, as the reconciler would); None when it may not
        be settled yet (the workflow may still be starting, or runs under another id)."""


class TemporalStarter:
    """The real starter: one lazily connected Temporal client (greenshift.temporal.connect)."""

    def __init__(
        self,
        settings: Settings,
        connect_timeout: float = 5.0,
        settle_seconds: float = 10.0,
        client: Any = None,  # a connected client (tests); else connected on first use
    ) -> None:
        self.settings = settings
        self.connect_timeout = connect_timeout
        self.settle_seconds = settle_seconds
        self._client: Any = client
        self._lock = asyncio.Lock()

    async def _get(self) -> Any:
        async with self._lock:
            if self._client is None:
                from greenshift.temporal import connect

                try:
                    self._client = await asyncio.wait_for(
                        connect(self.settings), timeout=self.connect_timeout
                    )
                except Exception as exc:
                    raise ServiceUnavailable(
                        f"Temporal at {self.settings.temporal_target} is unavailable; retry "
                        f"shortly. ({exc})"
                    ) from exc
            return self._client

    async def start(
        self, workflow: str, request: dict[str, Any], *, workflow_id: str, deployment_id: str
    ) -> None:
        from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
        from temporalio.exceptions import WorkflowAlreadyStartedError

        client = await self._get()

        async def start() -> None:
            await client.start_workflow(
                workflow,
                request,
                id=workflow_id,
                task_queue=self.settings.task_queue,
                memo={MEMO_DEPLOYMENT_ID: deployment_id},
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                rpc_timeout=_rpc_timeout(),
            )

        try:
            try:
                await start()
            except WorkflowAlreadyStartedError:
                # The caller already holds the endpoint in the registry, so the run still open
                # under this id has released it and is only finishing (its last events, its
                # handlers): a client that saw InService and updated at once meets it. Wait for
                # that run to close, boundedly, then start.
                if not await self._wait_closed(client, workflow_id):
                    raise
                await start()
        except WorkflowAlreadyStartedError as exc:
            raise ResourceInUse(
                f"Another operation is still running on this endpoint (workflow {workflow_id})."
            ) from exc
        except Exception as exc:
            raise _unavailable(exc) from exc

    async def _wait_closed(self, client: Any, workflow_id: str) -> bool:
        """Whether the open run of `workflow_id` closed within `settle_seconds`."""
        handle = client.get_workflow_handle(workflow_id)
        try:
            await asyncio.wait_for(handle.result(follow_runs=False), timeout=self.settle_seconds)
        except TimeoutError:
            return False
        except Exception:  # a failed or rolled-back run is closed all the same
            return True
        return True

    async def update(self, workflow_id: str, update: str, arg: dict[str, Any]) -> Any:
        from temporalio.client import WorkflowUpdateFailedError
        from temporalio.service import RPCError, RPCStatusCode

        client = await self._get()
        handle = client.get_workflow_handle(workflow_id)
        try:
            return await handle.execute_update(update, arg, rpc_timeout=_rpc_timeout())
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            raise ValidationError(getattr(cause, "message", None) or str(cause)) from exc
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                # No such workflow, or it has already finished: nothing to steer.
                raise WorkflowNotRunningError(
                    f"No deployment is running under workflow {workflow_id}."
                ) from exc
            raise _unavailable(exc) from exc
        except Exception as exc:
            raise _unavailable(exc) from exc

    async def abort_orphan(
        self, workflow_id: str, *, endpoint: str, deployment_id: str, held_for: float, arg: Any
    ) -> Any | None:
        """No run is open under the endpoint's workflow id (a running settle takes the abort
        update itself); `workflow_id` is the deployment's. If that is gone, start SettleEndpoint
        under the endpoint's id carrying the abort, so the event log names who aborted however
        fast it settles. Joining a settle the reconciler started in the same instant settles the
        endpoint just the same, without that event."""
        from greenshift import orphans

        client = await self._get()
        try:
            state = await orphans.workflow_state(client, workflow_id)
            if not orphans.settle_now(state, deployment_id, held_for, orphans.GRACE_SECONDS):
                return None
            log.warning("abort of %s, whose workflow is %s: settling it", endpoint, state.how)
            await orphans.start_settle(
                client,
                self.settings.task_queue,
                endpoint,
                deployment_id,
                orphans.settle_reason(workflow_id, state.how),
                aborted_by=str(arg.get("actor") or "anonymous"),
                abort_reason=str(arg.get("reason") or ""),
            )
        except Exception as exc:
            raise _unavailable(exc) from exc
        return {
            "accepted": True,
            "message": "The deployment's workflow is gone; the endpoint is being rolled back.",
        }

    async def query(self, workflow_id: str, query: str) -> Any:
        from temporalio.service import RPCError, RPCStatusCode

        client = await self._get()
        try:
            return await client.get_workflow_handle(workflow_id).query(
                query, rpc_timeout=_rpc_timeout()
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise ResourceNotFound(f'Could not find workflow "{workflow_id}".') from exc
            raise _unavailable(exc) from exc
        except Exception as exc:
            raise _unavailable(exc) from exc


def _rpc_timeout() -> Any:
    from datetime import timedelta

    return timedelta(seconds=10)


def _unavailable(exc: Exception) -> GreenshiftError:
    if isinstance(exc, GreenshiftError):
        return exc
    log.warning("temporal call failed: %s", exc)
    return ServiceUnavailable(f"Temporal is unavailable; retry shortly. ({exc})")
