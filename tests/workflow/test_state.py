"""The deployment phase names are a contract: users see them (the progress query,
DescribeDeployment) and the registry keeps them with every deployment's progress."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from workflows.state import STEP_PHASES, DeploymentPhase

HISTORIES = sorted((Path(__file__).parents[1] / "histories").glob("*.json"))


def test_the_phase_names_are_the_ones_users_know() -> None:
    assert [phase.value for phase in DeploymentPhase] == [
        "Preparing",
        "Provisioning",
        "ShiftingTraffic",
        "Baking",
        "Terminating",
        "Paused",
        "RollingBack",
        "CleaningUp",
        "Finished",
    ]
    assert set(STEP_PHASES) == {"provision", "traffic", "bake", "terminate"}


def test_every_recorded_progress_phase_is_a_phase() -> None:
    recorded: set[str] = set()
    for path in HISTORIES:
        for event in json.loads(path.read_text())["events"]:
            attributes = event.get("activityTaskScheduledEventAttributes")
            for payload in (attributes or {}).get("input", {}).get("payloads", []):
                data = json.loads(base64.b64decode(payload.get("data", "")) or "null")
                progress = data.get("progress") if isinstance(data, dict) else None
                for record in (data, progress):
                    if isinstance(record, dict) and "phase" in record:
                        recorded.add(record["phase"])
    assert recorded  # the histories do record progress
    assert recorded <= {phase.value for phase in DeploymentPhase}
