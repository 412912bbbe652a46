"""Which fleets the data plane treats as containers (their streams framed by eventstream.lua)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from greenshift.dataplane.fleetkinds import FleetKinds
from greenshift.registry.api import Registry
from greenshift.registry.records import FleetRecord

IMAGES = {
    "builtin": "greenshift/model-server:latest",
    "sklearn": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
    "own": "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-llm:3",
    "local": "greenshift-test/example:stream",
    "noimage": "",
}


class Fleets:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_fleet(self, fleet_id: str) -> FleetRecord | None:
        self.asked.append(fleet_id)
        if fleet_id not in IMAGES:
            return None
        spec: dict[str, Any] = {"PrimaryContainer": {"Image": IMAGES[fleet_id]}}
        return FleetRecord(
            fleet_id=fleet_id,
            endpoint="e",
            deployment_id="d",
            variant="v",
            config_name="c",
            model_name="m",
            instance_type="ml.m5.large",
            model_spec=spec,
            created_at=datetime.now(UTC),
        )


def test_containers_are_the_fleets_the_built_in_runtime_cannot_serve() -> None:
    fleets = Fleets()
    kinds = FleetKinds(cast(Registry, fleets))
    assert kinds.containers([*IMAGES, "gone"]) == {"own", "local"}
    asked = len(fleets.asked)
    assert kinds.containers(IMAGES) == {"own", "local"}
    assert len(fleets.asked) == asked  # known fleets are cached
    kinds.containers(["gone"])
    assert fleets.asked[-1] == "gone"  # an unknown fleet is asked again
