"""RolloutGroup: one deployment over several endpoints, in waves (issue 18).

A checklist: hold every endpoint of the group → for each wave, check the group's alarms, then
run the wave's UpdateEndpoint requests together as child workflows (the very UpdateEndpoint
workflow, with the group's alarms added to each) and wait until all have succeeded → check the
alarms once more → release. Any failure, alarm or abort sets one flag with a reason (habit 6);
the endpoints still moving roll themselves back (their workflow is cancelled, which is an abort),
and every endpoint the group already moved is moved back to the config it had, newest first.
The group ends `RolledBack` with the reason, or `RollbackFailed` if a move back failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError as PydanticValidationError

    from activities import models as act
    from activities.groups import HoldInput, HoldResult, ReleaseInput
    from greenshift import names, naming
    from greenshift.groups.model import (
        EndpointOutcome,
        GroupEvent,
        GroupStatus,
        GroupView,
        RolloutGroupInput,
        Wave,
        group_deployment_id,
        with_group_alarms,
    )
    from greenshift.names import HOLD_GROUP, RELEASE_GROUP, ROLLOUT_GROUP
    from workflows import options
    from workflows.inputs import business_failure
    from workflows.messages import ABORT, ALARM_TRIPPED, AlarmTripped, ControlRequest, ControlResult

GROUP_QUERY = names.GROUP_QUERY
# A run of `endpoint/<name>` that has released the endpoint may still be closing: wait this long
# for it before the group gives up on starting the endpoint's update.
START_ATTEMPTS = 10
START_RETRY = timedelta(seconds=1)


def _cause(error: BaseException) -> ApplicationError | None:
    """The child's own failure: UpdateEndpoint fails with its outcome as the type."""
    cause = error.cause if isinstance(error, ChildWorkflowError) else None
    return cause if isinstance(cause, ApplicationError) else None


def _plain(error: BaseException) -> str:
    if isinstance(error, WorkflowAlreadyStartedError):
        return "another operation is still running on it"
    return str(error)


@workflow.defn(name=ROLLOUT_GROUP)
class RolloutGroup:
    def __init__(self) -> None:
        self._name = ""
        self._status = GroupStatus.RUNNING
        self._reason: str | None = None
        self._abort: str | None = None
        self._wave = 0
        self._waves = 0
        self._alarms: list[str] = []
        self._outcomes: dict[str, EndpointOutcome] = {}
        self._events: list[GroupEvent] = []
        self._moved: list[str] = []  # endpoints on their new config, in the order they got there
        self._running: dict[str, str] = {}  # endpoint -> workflow id of its update
        self._finished = False

    @workflow.run
    async def run(self, request: Any) -> GroupView:
        """`request` is the RolloutGroup JSON (greenshift.groups.model); Any so that a bad input
        fails the workflow with a typed error instead of failing decoding forever."""
        try:
            group = RolloutGroupInput.model_validate(request)
        except PydanticValidationError as error:
            raise ApplicationError(
                f"Invalid RolloutGroup input: {error}",
                type="ValidationException",
                non_retryable=True,
            ) from None
        self._name, self._waves = group.RolloutGroupName, len(group.Waves)
        self._alarms = group.alarm_names()
        held = await self._hold(group)
        for number, wave in enumerate(group.Waves, start=1):
            for update in wave.Updates:
                name = str(update["EndpointName"])
                self._outcomes[name] = EndpointOutcome(
                    EndpointName=name,
                    Wave=number,
                    FromEndpointConfigName=held.configs.get(name, name),
                    ToEndpointConfigName=str(update.get("EndpointConfigName")),
                    Status="Pending",
                )
        self._event("GroupStarted", f"{len(self._outcomes)} endpoint(s) in {self._waves} wave(s).")
        try:
            for number, wave in enumerate(group.Waves, start=1):
                await self._check_alarms(f"before wave {number}")
                if self._abort is not None:
                    break
                await self._run_wave(number, wave)
                if self._abort is not None:
                    break
            if self._abort is None:
                await self._check_alarms("at the end of the group")
            if self._abort is not None:
                await self._shielded(lambda: self._roll_back(held))
            else:
                self._status = GroupStatus.SUCCEEDED
                self._event("GroupSucceeded", "Every endpoint of the group moved.")
        finally:
            await self._shielded(self._release)
            self._finished = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.view()

    # --- the checklist ---------------------------------------------------------------------
    async def _hold(self, group: RolloutGroupInput) -> HoldResult:
        try:
            result: HoldResult = await workflow.execute_activity(
                HOLD_GROUP,
                HoldInput(
                    group=group.RolloutGroupName, endpoints=group.endpoints(), at=workflow.now()
                ),
                result_type=HoldResult,
                start_to_close_timeout=options.REGISTRY.start_to_close,
                retry_policy=options.REGISTRY.retry(),
            )
        except ActivityError as error:
            # The API may have held some of them under this name before starting the group.
            await self._shielded(self._release)
            raise business_failure(error) from None
        return result

    async def _run_wave(self, number: int, wave: Wave) -> None:
        self._wave = number
        names = [str(u["EndpointName"]) for u in wave.Updates]
        self._event("WaveStarted", f"Wave {number}: {', '.join(names)}.")
        tasks = [asyncio.ensure_future(self._move(str(u["EndpointName"]), u)) for u in wave.Updates]
        await workflow.wait_condition(
            lambda: all(t.done() for t in tasks) or self._abort is not None
        )
        if self._abort is not None:
            # Cancelling an update is an abort: it rolls itself back, then ends.
            for workflow_id in list(self._running.values()):
                try:
                    await workflow.get_external_workflow_handle(workflow_id).cancel()
                except Exception:  # it closed meanwhile: nothing left to stop
                    workflow.logger.info("update %s had already closed", workflow_id)
        await asyncio.gather(*tasks)
        if self._abort is None:
            self._event("WaveSucceeded", f"Wave {number} moved {len(names)} endpoint(s).")

    async def _move(self, endpoint: str, update: dict[str, Any]) -> None:
        """Run one endpoint's UpdateEndpoint to its end and record what it did."""
        deployment_id = group_deployment_id(self._name, workflow.uuid4().hex[:16])
        self._set(endpoint, Status="Updating", DeploymentId=deployment_id)
        self._event("EndpointStarted", f"Updating {endpoint}.", endpoint)
        try:
            await self._child(endpoint, with_group_alarms(update, self._alarms), deployment_id)
        except (ChildWorkflowError, WorkflowAlreadyStartedError) as error:
            cause = _cause(error)
            message = cause.message if cause is not None else _plain(error)
            status = cause.type if cause is not None and cause.type else "Failed"
            if status not in ("RolledBack", "RollbackFailed"):
                status = "Failed"
            self._set(endpoint, Status=status, Message=message)
            self._event(f"Endpoint{status}", f"{endpoint}: {message}", endpoint)
            self._request_abort(f"Endpoint {endpoint} did not move: {message}")
            return
        finally:
            self._running.pop(endpoint, None)
        self._moved.append(endpoint)
        self._set(endpoint, Status="Succeeded")
        self._event("EndpointSucceeded", f"{endpoint} is on its new config.", endpoint)

    async def _child(self, endpoint: str, request: dict[str, Any], deployment_id: str) -> None:
        workflow_id = naming.workflow_id(endpoint)
        for attempt in range(START_ATTEMPTS):
            try:
                handle = await workflow.start_child_workflow(
                    "UpdateEndpoint",
                    args=[request, deployment_id],
                    id=workflow_id,
                    task_queue=workflow.info().task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                    # A group that is terminated must not strand an endpoint mid-deployment.
                    parent_close_policy=ParentClosePolicy.ABANDON,
                )
                break
            except WorkflowAlreadyStartedError:
                if attempt + 1 == START_ATTEMPTS:
                    raise
                await workflow.sleep(START_RETRY)
        self._running[endpoint] = workflow_id
        await handle

    async def _check_alarms(self, when: str) -> None:
        """The pull check of the group's alarms, before each wave and at the end."""
        if not self._alarms or self._abort is not None:
            return
        result: act.AlarmCheckResult = await workflow.execute_activity(
            names.CHECK_ALARMS,
            act.AlarmCheckInput(alarms=self._alarms),
            result_type=act.AlarmCheckResult,
            start_to_close_timeout=options.ALARMS.start_to_close,
            retry_policy=options.ALARMS.retry(),
        )
        if result.tripped is not None:
            detail = f" ({result.tripped.reason})" if result.tripped.reason else ""
            self._request_abort(f"Alarm {result.tripped.name} was in ALARM {when}{detail}.")

    async def _roll_back(self, held: HoldResult) -> None:
        """Every endpoint the group moved goes back to the config it had, newest first."""
        self._status = GroupStatus.ROLLING_BACK
        self._reason = self._abort
        self._event("RollbackStarted", self._abort or "")
        failed = False
        for endpoint in reversed(self._moved):
            back = {"EndpointName": endpoint, "EndpointConfigName": held.configs[endpoint]}
            deployment_id = group_deployment_id(self._name, workflow.uuid4().hex[:16])
            self._event(
                "EndpointReverting",
                f"Moving {endpoint} back to {held.configs[endpoint]}.",
                endpoint,
            )
            try:
                await self._child(endpoint, back, deployment_id)
            except (ChildWorkflowError, WorkflowAlreadyStartedError) as error:
                failed = True
                cause = _cause(error)
                message = cause.message if cause is not None else _plain(error)
                self._set(endpoint, Status="RevertFailed", Message=message)
                self._event("EndpointRevertFailed", f"{endpoint}: {message}", endpoint)
                continue
            self._set(endpoint, Status="Reverted")
            self._event("EndpointReverted", f"{endpoint} is back on its old config.", endpoint)
        stuck = [o.EndpointName for o in self._outcomes.values() if o.Status == "RollbackFailed"]
        if failed or stuck:
            self._status = GroupStatus.ROLLBACK_FAILED
            self._event("GroupRollbackFailed", f"{self._abort} Not every endpoint moved back.")
        else:
            self._status = GroupStatus.ROLLED_BACK
            self._event("GroupRolledBack", self._abort or "")

    async def _release(self) -> None:
        await workflow.execute_activity(
            RELEASE_GROUP,
            ReleaseInput(group=self._name),
            start_to_close_timeout=options.FINISH.start_to_close,
            retry_policy=options.FINISH.retry(),
        )

    async def _shielded(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Finish `call()` even if the group is cancelled meanwhile (cancelling is an abort).
        The coroutine is made here, not by the caller: a workflow evicted in a `finally` never
        leaves an un-awaited coroutine behind (a RuntimeWarning at garbage collection)."""
        task = asyncio.ensure_future(call())
        while True:
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                if task.done():
                    raise
                self._request_abort("The group was cancelled.")

    # --- state -----------------------------------------------------------------------------
    def _request_abort(self, reason: str) -> bool:
        if self._abort is not None or self._finished:
            return False
        self._abort = reason
        return True

    def _set(self, endpoint: str, **changes: Any) -> None:
        self._outcomes[endpoint] = self._outcomes[endpoint].model_copy(update=changes)

    def _event(self, type_: str, message: str, endpoint: str | None = None) -> None:
        self._events.append(
            GroupEvent(Time=workflow.now(), Type=type_, Message=message, EndpointName=endpoint)
        )

    def view(self) -> GroupView:
        return GroupView(
            RolloutGroupName=self._name,
            Status=self._status,
            Reason=self._reason,
            Wave=self._wave,
            WaveCount=self._waves,
            Endpoints=list(self._outcomes.values()),
            Events=list(self._events),
        )

    # --- signal, update, query -------------------------------------------------------------
    @workflow.signal(name=ALARM_TRIPPED)
    def alarm_tripped(self, alarm: AlarmTripped) -> None:
        if alarm.name in self._alarms:
            detail = f" ({alarm.reason})" if alarm.reason else ""
            self._request_abort(f"Alarm {alarm.name} was in ALARM during the group{detail}.")

    @workflow.update(name=ABORT)
    async def abort(self, request: ControlRequest) -> ControlResult:
        reason = f": {request.reason}" if request.reason else "."
        self._request_abort(f"The group was aborted by {request.actor}{reason}")
        self._event("Aborted", f"Aborted by {request.actor}{reason}")
        return ControlResult(accepted=True, message="The group is rolling back.")

    @abort.validator
    def _validate_abort(self, request: ControlRequest) -> None:
        if self._finished:
            raise ValueError("The group has finished.")
        if self._abort is not None:
            raise ValueError("The group is already rolling back.")

    @workflow.query(name=GROUP_QUERY)
    def group(self) -> GroupView:
        return self.view()
