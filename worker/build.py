"""Assemble a Temporal worker from its dependencies: the workflows, and the activity classes
built with the registry, fleet, traffic router and alarm source given. Tests pass fakes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import all_activities
from activities.alarms import AlarmActivities
from activities.finish import FinishActivities
from activities.fleet import FleetActivities
from activities.groups import GroupActivities
from activities.hosts import HostPlacementActivities
from activities.judging import JudgeActivities
from activities.planner import Planner, PlannerActivities, SagemakerPlanner
from activities.prepare import PrepareActivities
from activities.recording import RecordingActivities
from activities.settle import SettleActivities
from activities.traffic import TrafficActivities
from greenshift.hosts.store import HostStore
from greenshift.metrics.verdicts import JudgeSource
from greenshift.ports import AlarmSource, Fleet, TrafficRouter
from greenshift.registry.api import Registry
from greenshift.settings import Settings
from worker import payload_visits
from workflows import ALL_WORKFLOWS

# Activities are synchronous (SQLAlchemy, boto3, subprocess): they run in this many threads,
# never on the event loop.
ACTIVITY_THREADS = 64

# The sandbox imports every workflow module again for every workflow run it starts (about a
# fifth of the worker's CPU per deployment). The workflows package is deterministic by its own
# rule (it imports only the standard library, temporalio and pure project modules, the layering
# test checks it), so it is shared instead; each run still gets its own sandboxed globals for
# everything else, and its own instance of the workflow class.
PASSTHROUGH_MODULES = ("workflows",)


# The sandbox's restriction on builtins (no `open`, `input` or `breakpoint` in workflow code)
# is kept by swapping `isinstance`, `issubclass`, `open` and `input` in the builtins module for
# Python wrappers while any workflow task runs, for every thread of the process: the 64
# activity threads' SQLAlchemy and pydantic work paid a wrapper on every `isinstance` (issue 17:
# 1-13 ms of the worker's CPU per deployment, 5 on the median of 7 interleaved pairs). The
# workflows are passed through, so that rule is a test instead: tests/unit/test_layering.py
# finds no call to those builtins anywhere the workflows reach. Every other restriction of the
# default sandbox stays.
UNRESTRICTED_MEMBERS = ("__builtins__",)


def sandbox_restrictions() -> SandboxRestrictions:
    """The default sandbox, the workflows passed through, builtins left as they are."""
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    members = restrictions.invalid_module_members
    kept = {k: v for k, v in members.children.items() if k not in UNRESTRICTED_MEMBERS}
    return dataclasses.replace(
        restrictions, invalid_module_members=dataclasses.replace(members, children=kept)
    )


def workflow_runner() -> WorkflowRunner:
    """The sandbox every Greenshift worker (and the replay test) runs workflows in."""
    return SandboxedWorkflowRunner(restrictions=sandbox_restrictions())


@dataclass
class Dependencies:
    settings: Settings
    registry: Registry
    fleet: Fleet
    router: TrafficRouter
    alarms: AlarmSource
    planner: Planner = field(default_factory=SagemakerPlanner)
    # The hosts table (greenshift.hosts): None, or no host registered, keeps every instance on
    # `fleet`, the worker's own agent (tests with fakes, one machine before hosts existed).
    hosts: HostStore | None = None
    # The built-in judge's verdicts at the end of each bake (None: no judge, e.g. real CloudWatch).
    judges: JudgeSource | None = None


def build_worker(
    client: Client,
    deps: Dependencies,
    *,
    task_queue: str | None = None,
    executor: ThreadPoolExecutor | None = None,
    **worker_options: Any,
) -> Worker:
    """A worker for every Greenshift workflow and activity on `task_queue` (default: the
    settings'). The caller owns `executor` when it passes one; `worker_options` go to Worker."""
    worker_options.setdefault("workflow_runner", workflow_runner())
    payload_visits.install()  # no codec, no external storage: the SDK's walks do nothing
    return Worker(
        client,
        task_queue=task_queue or deps.settings.task_queue,
        workflows=ALL_WORKFLOWS,
        activities=worker_activities(deps),
        activity_executor=executor or ThreadPoolExecutor(max_workers=ACTIVITY_THREADS),
        max_concurrent_activities=ACTIVITY_THREADS,
        **worker_options,
    )


def worker_activities(deps: Dependencies) -> list[Callable[..., Any]]:
    """Every activity a worker registers on the shared task queue, built with `deps`
    (greenshift.names.WORKER_ACTIVITIES names them)."""
    recording = RecordingActivities(deps.registry)
    placement = HostPlacementActivities(
        deps.registry,
        deps.hosts,
        deps.settings.host_lost_after_seconds,
        recording.write_progress,
    )
    activities = all_activities(
        PrepareActivities(deps.registry, deps.settings, deps.alarms, placement.begin_step),
        recording,
        FinishActivities(deps.registry),
        PlannerActivities(deps.planner),
        FleetActivities(deps.fleet, deps.registry, deps.hosts, recording.write_progress),
        TrafficActivities(deps.router, recording.write_progress),
        AlarmActivities(deps.alarms, deps.settings.alarm_stale_seconds, deps.judges),
        GroupActivities(deps.registry),
        SettleActivities(deps.registry),
    )
    activities += placement.all()
    activities.append(JudgeActivities(deps.judges, deps.registry).judge_bake)
    return activities
