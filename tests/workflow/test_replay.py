"""Replay the recorded histories in tests/histories/ against today's workflow code: a change
that would break deployments in flight (reordered activities or timers without
`workflow.patched`) fails here. Record new ones with `python -m tests.histories.record`."""

from __future__ import annotations

import base64
import json
from pathlib import Path

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
    history = WorkflowHistory.from_json(name, HISTORIES[name])
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


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
