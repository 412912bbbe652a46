"""Recording activities: what a deployment in flight writes as it goes, its progress
(DescribeEndpoint's PendingDeploymentSummary) with the StepStarted event, its other events, and
the endpoint's status. Every write carries a key, so a retried activity writes nothing new.

Every method is synchronous (SQLAlchemy) and runs in the worker's thread pool.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

from temporalio import activity

from activities.errors import business_errors
from activities.models import (
    DeploymentRef,
    EventInput,
    ProgressInput,
    StatusInput,
)
from activities.progress import pending_at
from greenshift import names
from greenshift.planning.model import Plan
from greenshift.registry.api import Registry
from greenshift.registry.records import DeploymentEvent

# Plans of deployments in flight kept by record_progress (a plan is a few kB).
PLAN_CACHE_SIZE = 512


class RecordingActivities:
    """Progress, events and status over the registry; keeps the plans of the deployments in
    flight (progress is computed from them)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._plans: OrderedDict[str, tuple[Plan, str, datetime]] = OrderedDict()
        self._plans_lock = threading.Lock()

    @activity.defn(name=names.RECORD_PROGRESS)
    @business_errors
    def record_progress(self, data: ProgressInput) -> None:
        self.write_progress(data)

    def write_progress(self, data: ProgressInput) -> None:
        """Progress and its StepStarted event; also called by the step activities that carry
        their step's progress (StepInput.progress). Idempotent: a retry writes nothing new."""
        planned = self._planned(data.ref.deployment_id)
        if planned is None:
            return
        plan, config_name, started_at = planned
        pending = pending_at(
            plan,
            config_name=config_name,
            start_time=started_at,
            index=data.step_index,
            phase=data.phase,
            at=data.at,
            message=data.message,
            bake_ends_at=data.bake_ends_at,
            paused=data.paused,
        )
        # Progress and its event in one transaction: half the writes of a step.
        self.registry.record_progress(
            data.ref.endpoint,
            data.ref.deployment_id,
            pending,
            event_record(
                data.ref,
                "StepStarted",
                data.message,
                data.at,
                key=f"{data.phase}:{data.step_index}:{data.rollback_step}",
                detail={"phase": data.phase, "step": data.step_index},
            ),
        )

    def _planned(self, deployment_id: str) -> tuple[Plan, str, datetime] | None:
        """The plan progress is computed from, read once per deployment: prepare stores it before
        the first step and it never changes afterwards (a deployment without one yet is not
        remembered)."""
        with self._plans_lock:
            cached = self._plans.get(deployment_id)
        if cached is not None:
            return cached
        deployment = self.registry.get_deployment(deployment_id)
        if deployment is None or deployment.plan is None:
            return None
        planned = (
            Plan.model_validate(deployment.plan),
            deployment.to_config or "",
            deployment.started_at,
        )
        with self._plans_lock:
            self._plans[deployment_id] = planned
            while len(self._plans) > PLAN_CACHE_SIZE:
                self._plans.popitem(last=False)
        return planned

    @activity.defn(name=names.RECORD_EVENT)
    @business_errors
    def record_event(self, data: EventInput) -> None:
        self.registry.append_event(
            event_record(
                data.ref, data.type, data.message, data.at, data.key, data.detail, data.actor
            )
        )

    @activity.defn(name=names.SET_STATUS)
    @business_errors
    def set_status(self, data: StatusInput) -> None:
        self.registry.set_status(
            data.ref.endpoint, data.ref.deployment_id, data.status, data.reason
        )
        self.registry.append_event(
            event_record(
                data.ref,
                "StatusChanged",
                f"{data.status.value}: {data.reason}",
                data.at,
                key=f"status:{data.status.value}",
            )
        )


def event_record(
    ref: DeploymentRef,
    type_: str,
    message: str,
    at: datetime,
    key: str,
    detail: dict[str, Any] | None = None,
    actor: str | None = None,
) -> DeploymentEvent:
    """An event of `ref`'s deployment, keyed `<deployment id>:<key>`: stored once however often
    a retried activity sends it."""
    return DeploymentEvent(
        deployment_id=ref.deployment_id,
        endpoint=ref.endpoint,
        at=at,
        type=type_,
        message=message,
        detail=detail or {},
        actor=actor,
        key=f"{ref.deployment_id}:{key}",
    )
