"""The end of a bake, when its alarms include built-in judges: judge, then pass, extend, pause
or roll back (the rule is greenshift.metrics.verdicts.decide_bake; this module only acts it).

A judge that lacks data never lets a bake pass silently: the bake extends (traffic stays where
it is, alarms are still watched, promote ends the extension), and once the extension budget is
spent the deployment pauses with the reason, as a hold on stale alarms does. A resume judges
once more and then goes on; an abort, an alarm or the deadline rolls back as usual. Every look
records each judge's verdict as an event (in the activity, so a retry writes it once).

Guarded by `PATCH`: histories recorded before it replay without the judging activity.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from greenshift.metrics.verdicts import (
        EXTENDED_EVENT,
        VERDICT_EVENT,
        Action,
        JudgeInput,
        JudgeResult,
        decide_bake,
    )
    from greenshift.names import JUDGE_BAKE
    from greenshift.planning.model import BakeStep
    from greenshift.status import RollbackReason
    from workflows import options
    from workflows.calls import run_activity
    from workflows.inputs import failure_message
    from workflows.state import DeploymentPhase

if TYPE_CHECKING:
    from workflows.deployment import DeploymentWorkflow

PATCH = "judge-lacking-data"
# A bake whose alarm check found no judge among its alarms skips the judging activity (one
# activity and one workflow task per bake). Histories recorded before it replay with it.
ONLY_JUDGES_PATCH = "judge-only-judges"
# The judge reads the metric store, which shares the registry's database: as patient as the
# registry's own activities.
JUDGE = options.ActivityOptions(start_to_close=timedelta(seconds=30), attempts=8)


async def judge_bake(wf: DeploymentWorkflow, index: int, step: BakeStep) -> None:
    """Called at the end of every bake that watches alarms, after their pull check. The judges
    look at the whole deployment so far (greenshift.metrics.judge_source says why)."""
    if wf.state.abort is not None and wf.state.abort.reason is not RollbackReason.ALARM:
        return  # aborted or out of time: nothing to judge, the rollback comes first
    extended = 0
    look = 0
    can_extend = not wf.state.promote
    while True:
        look += 1
        result = await _look(wf, index, step, look)
        if wf.state.abort is not None:
            return  # an alarm tripped: its verdict is recorded, the rollback follows
        decision = decide_bake(
            result.verdicts, step.seconds, extended, _deadline_left(wf), can_extend
        )
        if decision.action is Action.PASS:
            if decision.message:
                await wf._event(VERDICT_EVENT, decision.message, None)
            return
        if decision.action is Action.FAIL:
            wf._request_abort(
                RollbackReason.ALARM,
                f"Judge alarm {decision.alarm} found the new fleet worse at the end of the "
                f"bake: {decision.message}.",
                None,
            )
            return
        if decision.action is Action.EXTEND:
            await wf._event(EXTENDED_EVENT, decision.message, None)
            promoted = await _extend(wf, index, decision.seconds, decision.message)
            extended += decision.seconds
            if wf.state.abort is None and step.alarms:
                await wf._check_alarms(list(step.alarms), "at the end of the extended bake")
            if wf.state.abort is not None:
                return
            can_extend = can_extend and not promoted
            continue
        # PAUSE: hold until a resume (judge once more, then go on) or an abort.
        wf.state.pause_message = decision.message
        if not wf.state.paused:
            wf.state.paused = True
            await wf._event("Paused", decision.message, None)
        await wf._hold_while_paused()
        wf.state.pause_message = None
        if wf.state.abort is not None:
            return
        wf.state.phase = DeploymentPhase.BAKING
        can_extend = False


async def _look(wf: DeploymentWorkflow, index: int, step: BakeStep, look: int) -> JudgeResult:
    """One look; a judge that cannot be read fails closed: the deployment rolls back."""
    prepared = wf._require_prepared()
    try:
        return await run_activity(
            JUDGE_BAKE,
            JudgeInput(
                endpoint=prepared.ref.endpoint,
                deployment_id=prepared.ref.deployment_id,
                alarms=list(step.alarms),
                since=workflow.info().start_time,
                step_index=index,
                look=look,
                at=workflow.now(),
            ),
            JUDGE,
            JudgeResult,
        )
    except ActivityError as error:
        wf._request_abort(
            RollbackReason.STEP_FAILED,
            f"Judging the bake (step {index + 1}) failed: {failure_message(error)}",
            None,
        )
        return JudgeResult()


async def _extend(wf: DeploymentWorkflow, index: int, seconds: int, message: str) -> bool:
    """Bake `seconds` more, as a bake: abort and alarms end it, promote ends it early (True)."""
    wf.state.phase = DeploymentPhase.BAKING
    wf.state.start_bake(workflow.now() + timedelta(seconds=seconds))
    await wf._progress(index, message, bake_ends_at=wf.state.bake_ends_at)
    try:
        await workflow.wait_condition(
            lambda: wf.state.abort is not None or wf.state.promote, timeout=seconds
        )
    except TimeoutError:
        pass
    finally:
        wf.state.end_bake()
    return wf.state.promote


def _deadline_left(wf: DeploymentWorkflow) -> float | None:
    """Seconds before MaximumExecutionTimeoutInSeconds, counted from the workflow's start (a
    little before the deadline timer's own start: on the safe side)."""
    timeout = wf._require_prepared().plan.max_execution_timeout_seconds
    if not timeout:
        return None
    ends = workflow.info().start_time + timedelta(seconds=timeout)
    return (ends - workflow.now()).total_seconds()
