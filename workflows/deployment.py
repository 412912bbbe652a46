"""The deployment executor every endpoint workflow shares: a checklist over the plan's steps.

Strategy lives in the planner; this class only carries steps out, in order:
provision → traffic (applied and confirmed) → bake (a timer raced against the abort flag, then a
pull check of the alarms) → terminate. Alarm, deadline, a failed step and the `abort` update
all set one flag with a reason (habit 6); the checklist looks at it at every step boundary and
hands over to the rollback, which is shielded from cancellation and not cut short by the
deadline. The rollback is planned from the state after every step that began (a step may have
taken effect even if it seemed to fail, and every step is absolute).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import models as act
    from greenshift import names
    from greenshift.hosts.messages import PlaceInput, Placement
    from greenshift.planning.model import (
        BakeStep,
        PlannedStep,
        ProvisionStep,
        Step,
        TerminateStep,
        TrafficStep,
    )
    from greenshift.status import DeploymentOutcome, EndpointStatus, RollbackReason
    from workflows import hosts, judging, options
    from workflows.calls import run_activity, run_local
    from workflows.inputs import (
        business_failure,
        deployment_id_of,
        failure_message,
        failure_type,
        release_after_failed_prepare,
    )
    from workflows.messages import (
        ABORT,
        ALARM_TRIPPED,
        PAUSE,
        PROGRESS,
        PROMOTE,
        RESUME,
        AlarmTripped,
        ControlRequest,
        ControlResult,
        ProgressView,
    )
    from workflows.state import STEP_PHASES, Abort, DeploymentPhase, DeploymentState

T = TypeVar("T")

# Stale alarms (a hung evaluator): look again every STALE_RECHECK_SECONDS, STALE_RECHECKS
# times, before pausing. Guarded by this patch so recorded histories still replay.
STALE_ALARMS_PATCH = "hold-on-stale-alarms"
STALE_RECHECK_SECONDS = 5
STALE_RECHECKS = 6

# Fewer round trips per deployment (issue 17). A provision, traffic or terminate step is one
# activity (traffic: a local one since TRAFFIC_LOCAL_PATCH) that records its own progress first
# and, on one machine, does the step without a placement call (StepInput.unless_hosts). The
# short registry writes (a bake's progress, events, status, finish) and the rollback planning
# run as local activities: a marker event in the workflow task that needed them instead of an
# activity task and a workflow task of their own, and their inputs stay out of the history. All
# are idempotent like every activity: a worker killed meanwhile fails its task, and the next
# worker runs them again. Decided once, at the start of the run, so a history recorded before
# it replays the old way throughout.
LEAN_PATCH = "lean-round-trips"

# The preparation (admission, plan, the endpoint taken, the new fleets' records: registry work
# only) as a local activity too: it runs in the first workflow task instead of an activity task
# and a workflow task of its own, two fewer round trips per deployment (issue 17). Idempotent as
# before: a worker killed meanwhile fails the task, and the next one prepares again and finds its
# own deployment holding the endpoint. Updates sent meanwhile wait for the task to end, so they
# are answered once the deployment is prepared. Only with LEAN_PATCH, decided at the start.
#
# A run of this generation has every earlier patch without asking for it (`_patched`): asking
# after a local activity is not safe. When the worker answers a query while a local activity's
# result is pending, the SDK closes the workflow task with the activity's marker and hands the
# result over in a new task; a replay hands it over in the task of the marker. A `patched` first
# asked after that result then answers False on replay where the run had answered True, and the
# next worker fails the run's tasks for nondeterminism (a killed worker's deployment did not
# finish). ("-2": the unreleased first form asked them after the local preparation.)
PREPARE_LOCAL_PATCH = "prepare-local-2"

# A traffic step as a local activity too (issue 17): it writes the routing and waits for the
# data plane to confirm it (well under a second as a rule, 60 s at most), so it runs in the
# workflow task that reached it (the one an activity's or a timer's end started) instead of an
# activity task and a workflow task of its own, and its input stays out of the history. When a
# bake follows, the step begins it too, once the traffic is live (StepInput.bake_after): the
# bake's progress is one registry write in the same activity. What a step writes is fenced by
# its place in the deployment (RoutingFence), absolute and idempotent: a worker killed meanwhile
# fails the task, and the next one writes it again. An update or signal sent meanwhile (an
# abort) is taken in once the step ends; an activity's was taken in at once, but a traffic step
# was never cut short either way. The newest generation: asked first and alone, it has every
# earlier patch without asking for it (one marker a run instead of two).
TRAFFIC_LOCAL_PATCH = "traffic-local-3"

# A provision or terminate step placed in the workflow task that reached it (issue 17): one
# local activity records the step's progress and places the fleet over the hosts (PlaceStep,
# registry work only), then the step is the activity of each host's share on its own queue, or
# of the shared queue's fleet when no host is registered. Before, with hosts registered (as
# `greenshift up` registers its own machine), a step was three activities: its progress, the
# placement and the host's share. What a local placement gives up: nothing a user sees (a
# placement was never cut short either); a worker killed in it is noticed by the workflow
# task's timeout. The newest generation: asked first and alone, every earlier patch implied.
PLACE_LOCAL_PATCH = "place-local-4"

# The preparation begins the first step too (issue 17): when it provisions a fleet the
# preparation made and no alarm check comes between them, the preparing local activity records
# that step's progress and places it (PrepareInput.first_step_phase), so the step is its hosts'
# activities alone, one local activity fewer per deployment. Both ran in the same workflow task
# before: nothing between them changes. A placement the preparation could not make is made by
# the step's own PlaceStep, which meets the refusal where a failed step is handled. The newest
# generation: asked first and alone, every earlier patch implied.
PREPARE_PLACE_PATCH = "prepare-place-5"


@dataclass
class Settled:
    """How the deployment ended, for the registry and the workflow's result."""

    status: EndpointStatus
    outcome: DeploymentOutcome
    failure_reason: str | None = None


class DeploymentWorkflow:
    """Shared state (`state`, workflows/state.py), handlers and step executor of the endpoint
    workflows (not a workflow itself: each operation subclasses it with its own `@workflow.run`).
    """

    def __init__(self) -> None:
        self.state = DeploymentState()

    # --- the checklist ---------------------------------------------------------------------
    async def _prepare(
        self, name: str, request: dict[str, Any], deployment_id: str | None
    ) -> act.Prepared:
        # This run's patches are decided here, before the first local activity
        # (PREPARE_LOCAL_PATCH says why): a patch added later is asked here too, kept in state.
        state = self.state
        state.prepare_place = workflow.patched(PREPARE_PLACE_PATCH)
        state.place_local = state.prepare_place or workflow.patched(PLACE_LOCAL_PATCH)
        state.traffic_local = state.place_local or workflow.patched(TRAFFIC_LOCAL_PATCH)
        state.lean = state.traffic_local or workflow.patched(LEAN_PATCH)
        state.prepare_local = state.traffic_local or (
            state.lean and workflow.patched(PREPARE_LOCAL_PATCH)
        )
        data = act.PrepareInput(
            request=request,
            deployment_id=deployment_id_of(deployment_id),
            workflow_id=workflow.info().workflow_id,
            started_at=workflow.now(),
            first_step_phase=STEP_PHASES["provision"].value if state.prepare_place else None,
        )
        try:
            if self.state.prepare_local:
                prepared = await self._write(name, data, options.REGISTRY, act.Prepared)
            else:
                prepared = await run_activity(name, data, options.REGISTRY, act.Prepared)
        except ActivityError as error:
            failure = business_failure(error)
            await release_after_failed_prepare(
                request.get("EndpointName"), data.deployment_id, failure
            )
            raise failure from None
        self.state.prepared = prepared
        self.state.first_placement = prepared.first_placement
        return prepared

    async def _deploy(self, on_failure: Callable[[Abort], Awaitable[Settled]]) -> dict[str, str]:
        """Run the plan; on any abort, `on_failure` (rollback, or cleanup for a create) settles
        the endpoint. Returns the workflow result or raises the deployment's failure."""
        prepared = self._require_prepared()
        succeeded = await self._forward(prepared)
        if succeeded:
            settled = Settled(EndpointStatus.IN_SERVICE, DeploymentOutcome.SUCCEEDED)
        else:
            assert self.state.abort is not None
            abort = self.state.abort
            settled = await self._shielded(lambda: on_failure(abort))
        await self._shielded(lambda: self._finish(settled, succeeded))
        self.state.finished = True
        self.state.phase = DeploymentPhase.FINISHED
        await workflow.wait_condition(workflow.all_handlers_finished)
        if not succeeded:
            raise ApplicationError(
                settled.failure_reason or settled.outcome.value,
                type=settled.outcome.value,
                non_retryable=True,
            )
        return {"EndpointArn": prepared.endpoint_arn}

    async def _forward(self, prepared: act.Prepared) -> bool:
        plan = prepared.plan
        deadline = None
        if plan.max_execution_timeout_seconds:
            deadline = asyncio.create_task(self._deadline(plan.max_execution_timeout_seconds))
        try:
            if plan.alarms:
                await self._check_alarms(list(plan.alarms), "before the first instance")
            for planned in plan.steps:
                await self._hold_while_paused()
                if self.state.abort is not None:
                    break
                # Counted before the step runs: it may take effect even if it appears to fail
                # (a timeout after the effect), and the rollback starts from where it led.
                self.state.started_steps = planned.index + 1
                await self._run_step(planned)
                if self.state.abort is not None:
                    break
        except asyncio.CancelledError:
            self._request_abort(RollbackReason.ABORTED, "The workflow was cancelled.", None)
        finally:
            self.state.forward_done = True
        if deadline is not None:
            await deadline
        return self.state.abort is None

    async def _run_step(self, planned: PlannedStep) -> None:
        step = planned.step
        self.state.index = planned.index
        self.state.phase = STEP_PHASES[step.kind]
        if isinstance(step, BakeStep):
            await self._bake(planned.index, step)
            return
        progress = None
        if self.state.lean:  # the step's activity records it
            progress = self._progress_input(planned.index, step.message)
        else:
            await self._progress(planned.index, step.message)
        fence = planned.index
        try:
            if isinstance(step, ProvisionStep):
                await self._interruptible(self._step_activity(step, progress=progress, fence=fence))
            elif isinstance(step, TrafficStep):
                bake = self._bake_after(planned)
                await self._step_activity(step, progress=progress, fence=fence, bake=bake)
                if bake is not None:
                    self.state.begun_bake = bake.progress.step_index
            else:
                await self._step_activity(step, progress=progress, fence=fence)
        except ActivityError as error:
            if failure_type(error) == act.PROVISION_FAILED:
                self._request_abort(RollbackReason.PROVISION_FAILED, failure_message(error), None)
            else:
                self._request_abort(
                    RollbackReason.STEP_FAILED,
                    f"Step {planned.index + 1} ({step.message}) failed: {failure_message(error)}",
                    None,
                )

    def _bake_after(self, planned: PlannedStep) -> act.BakeStart | None:
        """The bake right after traffic step `planned`, for the step's local activity to begin
        once the traffic is live (TRAFFIC_LOCAL_PATCH); None if no bake follows."""
        steps = self._require_prepared().plan.steps
        if not self.state.traffic_local or planned.index + 1 >= len(steps):
            return None
        following = steps[planned.index + 1]
        if not isinstance(following.step, BakeStep):
            return None
        progress = self._progress_input(
            following.index, following.step.message, phase=DeploymentPhase.BAKING
        )
        return act.BakeStart(progress=progress, seconds=following.step.seconds)

    async def _bake(self, index: int, step: BakeStep) -> None:
        begun, self.state.begun_bake = self.state.begun_bake, None
        self.state.start_bake(workflow.now() + timedelta(seconds=step.seconds))
        if begun != index:  # else the traffic step before it recorded its progress
            await self._progress(index, step.message, bake_ends_at=self.state.bake_ends_at)
        try:
            if step.seconds > 0:
                await workflow.wait_condition(
                    lambda: self.state.abort is not None or self.state.promote, timeout=step.seconds
                )
        except TimeoutError:
            pass  # the bake ran its full time
        finally:
            self.state.end_bake()
        judges: list[str] | None = None  # not known
        if self.state.abort is None and step.alarms:
            judges = await self._check_alarms(
                list(step.alarms), "at the end of the bake", judges=True
            )
        if step.alarms and self._patched(judging.PATCH):
            if judges == [] and self._patched(judging.ONLY_JUDGES_PATCH):
                return  # no judge among the alarms: nothing to judge
            await judging.judge_bake(self, index, step)

    async def _check_alarms(
        self, alarms: list[str], when: str, judges: bool = False
    ) -> list[str] | None:
        """The pull check: a lost signal can never let an ALARM pass, and stale states (a hung
        evaluator) never pass for OK: the deployment holds until they are fresh again. With
        `judges`, returns which alarms are built-in judges (None: not asked, or not known)."""
        result = await self._alarm_states(alarms, judges)
        if result.tripped is not None:
            self._alarm(result.tripped.name, result.tripped.reason, when)
        elif result.stale and self._patched(STALE_ALARMS_PATCH):
            await self._hold_while_stale(alarms, when, result)
        return result.judges

    async def _alarm_states(self, alarms: list[str], judges: bool = False) -> act.AlarmCheckResult:
        return await run_activity(
            names.CHECK_ALARMS,
            act.AlarmCheckInput(alarms=alarms, judges=judges),
            options.ALARMS,
            act.AlarmCheckResult,
        )

    async def _hold_while_stale(
        self, alarms: list[str], when: str, result: act.AlarmCheckResult
    ) -> None:
        """Wait for the alarms to be evaluated again; if they are not, pause and say why. Traffic
        stays where it is; a resume checks again, an abort or the deadline rolls back."""
        while result.stale and self.state.abort is None:
            for _ in range(STALE_RECHECKS):
                try:
                    await workflow.wait_condition(
                        lambda: self.state.abort is not None, timeout=STALE_RECHECK_SECONDS
                    )
                except TimeoutError:
                    pass
                if self.state.abort is not None:
                    return
                result = await self._alarm_states(alarms)
                if result.tripped is not None:
                    self._alarm(result.tripped.name, result.tripped.reason, when)
                    return
                if not result.stale:
                    return
            self.state.pause_message = (
                f"Paused {when}: alarm(s) {', '.join(result.stale)} were last evaluated "
                f"{result.stale_seconds:.0f} s ago (is the alarm evaluator running?); traffic "
                "is held where it is. Resume once they are evaluated again, or abort."
            )
            if not self.state.paused:
                self.state.paused = True
                await self._event("Paused", self.state.pause_message, None)
            await self._hold_while_paused()
            self.state.pause_message = None
            if self.state.abort is None:
                result = await self._alarm_states(alarms)
                if result.tripped is not None:
                    self._alarm(result.tripped.name, result.tripped.reason, when)
                    return

    async def _deadline(self, seconds: int) -> None:
        """MaximumExecutionTimeoutInSeconds as a timer in the workflow (execution_timeout would
        kill it without its rollback)."""
        try:
            await workflow.wait_condition(lambda: self.state.forward_done, timeout=seconds)
        except TimeoutError:
            self._request_abort(
                RollbackReason.DEADLINE,
                f"The deployment did not finish within MaximumExecutionTimeoutInSeconds "
                f"({seconds} seconds).",
                None,
            )

    async def _hold_while_paused(self) -> None:
        if not self.state.paused:
            return
        self.state.begun_bake = None  # a bake after the hold begins afresh
        self.state.phase = DeploymentPhase.PAUSED
        await self._progress(
            self.state.index if self.state.index is not None else -1,
            self.state.pause_message or "Paused before the next step; resume or abort it.",
            True,
        )
        # A paused deployment still rolls back on an alarm, an abort or the deadline.
        await workflow.wait_condition(lambda: not self.state.paused or self.state.abort is not None)

    async def _interruptible(self, call: Awaitable[T]) -> T | None:
        """Run a long step, cancelling it when the deployment is aborted meanwhile."""
        task = asyncio.ensure_future(call)
        await workflow.wait_condition(lambda: task.done() or self.state.abort is not None)
        if not task.done():
            task.cancel()
        try:
            return await task
        except (ActivityError, asyncio.CancelledError):
            if self.state.abort is not None:
                return None
            raise

    # --- rollback --------------------------------------------------------------------------
    async def _rollback(self, abort: Abort) -> Settled:
        """Traffic back to blue, green terminated, InService on the old config; a failed
        rollback is UpdateRollbackFailed, never a silent drop."""
        prepared = self._require_prepared()
        self.state.rolling_back = True
        self.state.phase = DeploymentPhase.ROLLING_BACK
        try:
            plan = await self._write(
                names.PLAN_ROLLBACK,
                act.RollbackInput(
                    ref=prepared.ref,
                    plan=prepared.plan,
                    started_steps=self.state.started_steps,
                ),
                options.REGISTRY,
                act.RollbackPlan,
            )
            await self._set_status(EndpointStatus.ROLLING_BACK, abort.message)
            for number, step in enumerate(plan.steps):
                if isinstance(step, BakeStep):
                    continue
                index = self.state.index if self.state.index is not None else -1
                message = f"Rolling back: {step.message}"
                progress = None
                if self.state.lean:  # the step's activity records it
                    progress = self._progress_input(index, message, rollback_step=number)
                else:
                    await self._progress(index, message, rollback_step=number)
                await self._step_activity(
                    step,
                    attempts=options.ROLLBACK_ATTEMPTS,
                    progress=progress,
                    # After every forward step; one fence for the whole rollback, so a
                    # SettleEndpoint that runs it again (its workflow gone) is not refused.
                    fence=len(prepared.plan.steps),
                )
        except ActivityError as error:
            return Settled(
                EndpointStatus.UPDATE_ROLLBACK_FAILED,
                DeploymentOutcome.ROLLBACK_FAILED,
                f"{abort.message} The rollback failed: {failure_message(error)}",
            )
        return Settled(EndpointStatus.IN_SERVICE, DeploymentOutcome.ROLLED_BACK, abort.message)

    async def _shielded(self, call: Callable[[], Awaitable[T]]) -> T:
        """Finish `call()` even if the workflow is cancelled meanwhile. The coroutine is made
        here, not by the caller: a workflow evicted in a `finally` never leaves an un-awaited
        coroutine behind (a RuntimeWarning at garbage collection)."""
        task = asyncio.ensure_future(call())
        while True:
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                if task.done():
                    raise
                self._request_abort(RollbackReason.ABORTED, "The workflow was cancelled.", None)

    async def _finish(self, settled: Settled, succeeded: bool) -> None:
        prepared = self._require_prepared()
        await self._write(
            names.FINISH,
            act.FinishInput(
                ref=prepared.ref,
                status=settled.status,
                outcome=settled.outcome,
                succeeded=succeeded,
                prepared=prepared,
                failure_reason=settled.failure_reason,
                at=workflow.now(),
            ),
            options.FINISH,
            None,
        )

    # --- activity calls --------------------------------------------------------------------
    async def _step_activity(
        self,
        step: Step,
        attempts: int | None = None,
        progress: act.ProgressInput | None = None,
        fence: int | None = None,
        bake: act.BakeStart | None = None,
    ) -> Any:
        """`fence`: where the step stands in the deployment (StepInput.fence_step); `bake`: the
        bake a traffic step begins (StepInput.bake_after)."""
        prepared = self._require_prepared()
        data = act.StepInput(
            ref=prepared.ref,
            step=step,
            fleets=prepared.fleets,
            routing_strategies=prepared.plan.routing_strategies(),
            progress=progress,
            unless_hosts=self.state.lean
            and not self.state.place_local
            and isinstance(step, ProvisionStep | TerminateStep),
            fence_step=fence,
            bake_after=bake,
        )
        if isinstance(step, ProvisionStep):
            spec = next((s for s in prepared.plan.green if s.variant == step.fleet.variant), None)
            opts = options.provision(spec.startup_timeout_seconds if spec else 600)
            name = names.PROVISION
        elif isinstance(step, TerminateStep):
            opts, name = options.TERMINATE, names.TERMINATE
        elif isinstance(step, TrafficStep):
            opts, name = options.TRAFFIC, names.SHIFT_TRAFFIC
        else:
            raise ApplicationError(f"not an executable step: {step.kind}", non_retryable=True)
        if attempts is not None:
            opts = options.ActivityOptions(opts.start_to_close, attempts, opts.heartbeat)
        if isinstance(step, ProvisionStep | TerminateStep) and self.state.place_local:
            return await self._place_and_scale(step, name, data, opts)
        if isinstance(step, ProvisionStep | TerminateStep) and self._patched(hosts.PATCH):
            return await self._scale_on_hosts(step, name, data, opts)
        if isinstance(step, TrafficStep) and self.state.traffic_local:
            return await run_local(name, data, opts, None)
        return await run_activity(name, data, opts, None)

    async def _place_and_scale(
        self,
        step: ProvisionStep | TerminateStep,
        name: str,
        data: act.StepInput,
        opts: options.ActivityOptions,
    ) -> Any:
        """The step's progress and placement in a local activity (PLACE_LOCAL_PATCH), then the
        hosts' shares; the shared queue's step when no host is registered (or no fleet was
        ever made for it: its terminate finds nothing to do)."""
        fleet_id = data.fleets.get(step.fleet.key)
        grow = isinstance(step, ProvisionStep)
        place = None
        if fleet_id is not None:
            place = PlaceInput(fleet_id=fleet_id, count=step.count, grow=grow)
        placement = self._begun_by_preparation(data)
        if placement is None:
            placement = await run_local(
                names.PLACE_STEP,
                act.PlaceStepInput(progress=data.progress, place=place),
                options.REGISTRY,
                Placement,
            )
        data = data.model_copy(update={"progress": None})

        async def on_this_queue() -> Any:
            return await run_activity(name, data, opts, None)

        if fleet_id is None:
            return await on_this_queue()
        return await hosts.scale_placed(fleet_id, placement, grow, opts, on_this_queue)

    def _begun_by_preparation(self, data: act.StepInput) -> Placement | None:
        """The first forward step's placement, if the preparation made it (PREPARE_PLACE_PATCH);
        asked once: any later step, a rollback's included, places itself."""
        placement, self.state.first_placement = self.state.first_placement, None
        return placement if data.fence_step == 0 else None

    async def _scale_on_hosts(
        self,
        step: ProvisionStep | TerminateStep,
        name: str,
        data: act.StepInput,
        opts: options.ActivityOptions,
    ) -> Any:
        """The fleet's instances over the hosts (workflows/hosts.py); a fleet never made has
        nothing to terminate, and with no host registered the shared queue's fleet does it."""
        fleet_id = data.fleets.get(step.fleet.key)
        if fleet_id is None:
            return await run_activity(name, data, opts, None)
        if data.unless_hosts:
            # One activity when no host is registered; None means there are hosts: place.
            done: Any = await run_activity(name, data, opts, None)
            if done is not None:
                return done
            data = data.model_copy(update={"progress": None, "unless_hosts": False})
        grow = isinstance(step, ProvisionStep)
        return await hosts.scale_fleet(
            fleet_id, step.count, grow, opts, lambda: run_activity(name, data, opts, None)
        )

    def _patched(self, patch: str) -> bool:
        """Whether `patch`, older than PREPARE_LOCAL_PATCH, holds for this run: without asking
        in a run that prepared locally; asked where it always was in the runs before, which is
        where their histories replay it."""
        return self.state.prepare_local or workflow.patched(patch)

    async def _write(
        self, name: str, arg: Any, opts: options.ActivityOptions, result_type: type[T] | None
    ) -> T:
        """A short registry call (the preparation, progress, events, the finish) or the pure
        rollback planning: a local activity once LEAN_PATCH holds for this run, an activity
        otherwise."""
        if not self.state.lean:
            return await run_activity(name, arg, opts, result_type)
        return await run_local(name, arg, opts, result_type)

    async def _progress(
        self,
        index: int,
        message: str,
        paused: bool = False,
        bake_ends_at: Any = None,
        rollback_step: int | None = None,
    ) -> None:
        await self._write(
            names.RECORD_PROGRESS,
            self._progress_input(index, message, paused, bake_ends_at, rollback_step),
            options.REGISTRY,
            None,
        )

    def _progress_input(
        self,
        index: int,
        message: str,
        paused: bool = False,
        bake_ends_at: Any = None,
        rollback_step: int | None = None,
        phase: DeploymentPhase | None = None,
    ) -> act.ProgressInput:
        return act.ProgressInput(
            ref=self._require_prepared().ref,
            step_index=index,
            phase=(phase or self.state.phase).value,
            message=message,
            at=workflow.now(),
            bake_ends_at=bake_ends_at,
            paused=paused,
            rollback_step=rollback_step,
        )

    async def _set_status(self, status: EndpointStatus, reason: str) -> None:
        prepared = self._require_prepared()
        await self._write(
            names.SET_STATUS,
            act.StatusInput(ref=prepared.ref, status=status, reason=reason, at=workflow.now()),
            options.REGISTRY,
            None,
        )

    async def _event(self, type_: str, message: str, actor: str | None) -> None:
        if self.state.prepared is None:
            return
        self.state.events += 1
        await self._write(
            names.RECORD_EVENT,
            act.EventInput(
                ref=self.state.prepared.ref,
                type=type_,
                message=message,
                at=workflow.now(),
                actor=actor,
                key=f"control:{self.state.events}",
            ),
            options.REGISTRY,
            None,
        )

    def _require_prepared(self) -> act.Prepared:
        if self.state.prepared is None:
            raise ApplicationError("the deployment was not prepared", non_retryable=True)
        return self.state.prepared

    # --- the abort flag --------------------------------------------------------------------
    def _request_abort(self, reason: RollbackReason, message: str, actor: str | None) -> bool:
        if self.state.abort is not None or self.state.rolling_back or self.state.forward_done:
            return False
        self.state.abort = Abort(reason, message, actor)
        return True

    def _alarm(self, name: str, reason: str, when: str) -> None:
        detail = f" ({reason})" if reason else ""
        self._request_abort(
            RollbackReason.ALARM, f"Alarm {name} was in ALARM {when}{detail}.", None
        )

    # --- signal, updates, query ------------------------------------------------------------
    @workflow.signal(name=ALARM_TRIPPED)
    def alarm_tripped(self, alarm: AlarmTripped) -> None:
        if self.state.prepared is not None and alarm.name not in self.state.prepared.plan.alarms:
            return  # not an alarm this deployment watches
        self._alarm(alarm.name, alarm.reason, "during the deployment")

    def _require_running(self) -> None:
        if self.state.prepared is None:
            raise ValueError("The deployment is still being prepared; try again in a moment.")
        if self.state.rolling_back or self.state.abort is not None:
            raise ValueError("The deployment is rolling back.")
        if self.state.forward_done or self.state.finished:
            raise ValueError("The deployment has finished.")

    @workflow.update(name=PAUSE)
    async def pause(self, request: ControlRequest) -> ControlResult:
        self.state.paused = True
        await self._event("Paused", f"Paused by {request.actor}: {request.reason}", request.actor)
        return ControlResult(accepted=True, message="The deployment holds at the next step.")

    @pause.validator
    def _validate_pause(self, request: ControlRequest) -> None:
        self._require_running()
        if self.state.paused:
            raise ValueError("The deployment is already paused.")

    @workflow.update(name=RESUME)
    async def resume(self, request: ControlRequest) -> ControlResult:
        self.state.paused = False
        await self._event("Resumed", f"Resumed by {request.actor}: {request.reason}", request.actor)
        return ControlResult(accepted=True, message="The deployment goes on.")

    @resume.validator
    def _validate_resume(self, request: ControlRequest) -> None:
        self._require_running()
        if not self.state.paused:
            raise ValueError("The deployment is not paused.")

    @workflow.update(name=PROMOTE)
    async def promote(self, request: ControlRequest) -> ControlResult:
        self.state.promote = True
        await self._event(
            "Promoted", f"Bake ended early by {request.actor}: {request.reason}", request.actor
        )
        return ControlResult(accepted=True, message="The current bake ends now.")

    @promote.validator
    def _validate_promote(self, request: ControlRequest) -> None:
        self._require_running()
        if not self.state.baking:
            raise ValueError(f"The deployment is not baking (it is {self.state.phase.value}).")

    @workflow.update(name=ABORT)
    async def abort(self, request: ControlRequest) -> ControlResult:
        reason = f": {request.reason}" if request.reason else "."
        self._request_abort(
            RollbackReason.ABORTED,
            f"The deployment was aborted by {request.actor}{reason}",
            request.actor,
        )
        await self._event("Aborted", f"Aborted by {request.actor}{reason}", request.actor)
        return ControlResult(accepted=True, message="The deployment is rolling back.")

    @abort.validator
    def _validate_abort(self, request: ControlRequest) -> None:
        self._require_running()

    @workflow.query(name=PROGRESS)
    def progress(self) -> ProgressView:
        steps = self.state.prepared.plan.steps if self.state.prepared is not None else ()
        return ProgressView(
            phase=self.state.phase.value,
            step_index=self.state.index,
            step_count=len(steps),
            paused=self.state.paused,
            baking=self.state.baking,
            bake_ends_at=self.state.bake_ends_at,
            rolling_back=self.state.rolling_back,
            abort_reason=self.state.abort.reason.value if self.state.abort else None,
            abort_message=self.state.abort.message if self.state.abort else None,
            finished=self.state.finished,
        )
