"""A workflow started directly (temporal CLI, SDK) had no client to validate it: an unknown
member (a typo) or a non-finite number fails it at once, naming the member, before any side
effect; the endpoint is untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from greenshift.status import EndpointStatus
from tests.workflow.harness import variant, world

TYPO = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE"}}}


@pytest.mark.parametrize(
    ("workflow", "request_doc", "code", "named"),
    [
        (
            "UpdateEndpoint",
            {"EndpointName": "e1", "EndpointConfigName": "c2", "DeploymentConifg": TYPO},
            "ValidationException",
            '"DeploymentConifg"',
        ),
        (
            "UpdateEndpointWeightsAndCapacities",
            {
                "EndpointName": "e1",
                "DesiredWeightsAndCapacities": [{"VariantName": "A", "DesiredWieght": 2.0}],
            },
            "ValidationException",
            'DesiredWeightsAndCapacities[0]: "DesiredWieght"',
        ),
        (
            "UpdateEndpointWeightsAndCapacities",
            {
                "EndpointName": "e1",
                "DesiredWeightsAndCapacities": [
                    {"VariantName": "A", "DesiredWeight": float("inf")}
                ],
            },
            "SerializationException",
            "desiredWeight",
        ),
        (
            "DeleteEndpoint",
            {"EndpointName": "e1", "Force": True},
            "ValidationException",
            '"Force"',
        ),
    ],
)
async def test_strict_input_fails_before_any_side_effect(
    env: WorkflowEnvironment,
    tmp_path: Path,
    workflow: str,
    request_doc: dict[str, Any],
    code: str,
    named: str,
) -> None:
    async with world(env.client, tmp_path) as w:
        await w.create("e1", "c1")
        w.add_config("c2", variant(model="m2"))
        before = w.endpoint("e1")
        handle = await w.client.start_workflow(
            workflow, request_doc, id=f"strict-{workflow}-{code}", task_queue=w.task_queue
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        cause = failure.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.type == code and cause.non_retryable
        assert named in cause.message
        history = await handle.fetch_history()
        assert not any(
            e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for e in history.events
        )
        after = w.endpoint("e1")
        assert after.status is EndpointStatus.IN_SERVICE
        assert after.model_dump() == before.model_dump()
