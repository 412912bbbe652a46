"""Replay the recorded histories in tests/histories/ against today's workflow code: a change
that would break deployments in flight (reordered activities or timers without
`workflow.patched`) fails here. Record new ones with `python -m tests.histories.record`."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from activities import models as act
from greenshift import names
from workflows import ALL_WORKFLOWS

HISTORIES = {
    path.stem: path.read_text()
    for path in sorted((Path(__file__).parents[1] / "histories").glob("*.json"))
}


def test_there_are_recorded_histories() -> None:
    assert len(HISTORIES) >= 5


@pytest.mark.parametrize("name", sorted(HISTORIES))
async def test_recorded_history_replays(name: str) -> None:
    failure = await replay_failure(name, HISTORIES[name])
    assert failure is None, failure


async def replay_failure(name: str, history_json: str) -> Exception | None:
    """Why today's workflow code could not replay the history, or None."""
    history = WorkflowHistory.from_json(name, history_json)
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    return result.replay_failure


# Inputs an activity worker decodes itself (a replay never does): an activity scheduled by an
# older worker may run on today's.
RECORDED_INPUTS: dict[str, type[BaseModel]] = {
    names.PLAN_ROLLBACK: act.RollbackInput,
    names.FINISH: act.FinishInput,
}


def test_recorded_activity_inputs_still_decode() -> None:
    decoded: set[str] = set()
    for text in HISTORIES.values():
        for event in json.loads(text)["events"]:
            attributes = event.get("activityTaskScheduledEventAttributes")
            if not attributes or attributes["activityType"]["name"] not in RECORDED_INPUTS:
                continue
            name = attributes["activityType"]["name"]
            (payload,) = attributes["input"]["payloads"]
            RECORDED_INPUTS[name].model_validate_json(base64.b64decode(payload["data"]))
            decoded.add(name)
    assert decoded == set(RECORDED_INPUTS)


LOCAL_ACTIVITY_MARKER = "core_local_activity"
# The generations that prepare locally (workflows/deployment.py, PREPARE_LOCAL_PATCH, then
# TRAFFIC_LOCAL_PATCH, PLACE_LOCAL_PATCH and PREPARE_PLACE_PATCH), their histories with local
# activities.
LOCAL_PREPARE_GENERATIONS = (
    "local-prepare-2-",
    "traffic-local-3-",
    "place-local-4-",
    "prepare-place-5-",
)
LOCAL_PREPARE = {
    name: text
    for name, text in HISTORIES.items()
    if any(g in name for g in LOCAL_PREPARE_GENERATIONS) and LOCAL_ACTIVITY_MARKER in text
}


def split_after_local_activities(history: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """`history` as a worker may record it when it answers a query while a local activity's
    result is pending: the SDK then closes the workflow task with the activity's marker and
    hands the result to the workflow in a new task. Here every local activity's marker closes
    its task (a scheduled, started, completed task after each); the ids of the events after it,
    and every reference to them, shift. Returns the history and how many tasks were inserted."""
    events = history["events"]
    template = {e["eventType"]: e for e in events[:4]}  # the first task's three events
    new_id: dict[int, int] = {}
    inserted = 0
    for event in events:
        new_id[int(event["eventId"])] = int(event["eventId"]) + 3 * inserted
        inserted += _is_local_activity_marker(event)

    def renumbered(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: renumbered(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [renumbered(v) for v in value]
        if (key == "eventId" or key.endswith("EventId")) and int(value) in new_id:
            return str(new_id[int(value)])
        return value

    out: list[dict[str, Any]] = []
    for event in events:
        out.append(renumbered(event))
        if not _is_local_activity_marker(event):
            continue
        marker_id = int(out[-1]["eventId"])
        scheduled, started, completed = (
            copy.deepcopy(template[f"EVENT_TYPE_WORKFLOW_TASK_{kind}"])
            for kind in ("SCHEDULED", "STARTED", "COMPLETED")
        )
        scheduled["eventId"] = str(marker_id + 1)
        started["eventId"] = str(marker_id + 2)
        started["workflowTaskStartedEventAttributes"]["scheduledEventId"] = str(marker_id + 1)
        completed["eventId"] = str(marker_id + 3)
        completed["workflowTaskCompletedEventAttributes"].update(
            scheduledEventId=str(marker_id + 1), startedEventId=str(marker_id + 2)
        )
        out += [scheduled, started, completed]
    return {**history, "events": out}, inserted


def _is_local_activity_marker(event: dict[str, Any]) -> bool:
    attributes = event.get("markerRecordedEventAttributes")
    return attributes is not None and attributes["markerName"] == LOCAL_ACTIVITY_MARKER


def test_there_are_histories_that_prepare_locally() -> None:
    assert len(LOCAL_PREPARE) >= 5


@pytest.mark.parametrize("name", sorted(LOCAL_PREPARE))
async def test_a_history_whose_local_activities_close_their_tasks_replays(name: str) -> None:
    """A `workflow.patched` asked right after a local activity's result would be answered
    False on this replay, where the run answered True: a run that prepares locally asks none
    there (a worker killed mid-deployment left its successor failing every task, issue 17)."""
    history, inserted = split_after_local_activities(json.loads(LOCAL_PREPARE[name]))
    assert inserted > 0
    failure = await replay_failure(name, json.dumps(history))
    assert failure is None, failure
