"""The judging activity: each judge alarm's verdict over a bake, recorded as an event of the
deployment (so `greenshift events`, describe and the webhooks show it with its figures).

One activity per look both judges and records: the verdicts are computed where the data is, and
the events carry an idempotency key (bake step, look, alarm), so a retried look writes nothing
twice. Without a judge source (alarms read from real CloudWatch, which has no built-in judge)
there is no verdict and the bake is left to its alarms.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from activities.errors import business_errors
from greenshift.metrics.verdicts import VERDICT_EVENT, JudgeInput, JudgeResult, JudgeSource
from greenshift.names import JUDGE_BAKE
from greenshift.registry.api import Registry
from greenshift.registry.records import DeploymentEvent


class JudgeActivities:
    def __init__(self, judges: JudgeSource | None, registry: Registry) -> None:
        self.judges = judges
        self.registry = registry

    @activity.defn(name=JUDGE_BAKE)
    @business_errors
    def judge_bake(self, data: JudgeInput) -> JudgeResult:
        if self.judges is None or not data.alarms:
            return JudgeResult()
        verdicts = self.judges.verdicts(data, datetime.now(UTC))
        for verdict in verdicts:
            self.registry.append_event(
                DeploymentEvent(
                    deployment_id=data.deployment_id,
                    endpoint=data.endpoint,
                    at=data.at,
                    type=VERDICT_EVENT,
                    message=verdict.message,
                    detail={**verdict.detail(), "Step": data.step_index + 1, "Look": data.look},
                    key=f"{data.deployment_id}:judge:{data.step_index}:{data.look}:{verdict.alarm}",
                )
            )
        return JudgeResult(verdicts=verdicts)
