"""Which fleets capture, read from the registry: a fleet's DataCaptureConfig is that of the
EndpointConfig it was deployed from (the config a fleet runs never changes, so answers are
cached per fleet). An UpdateEndpoint to a config without DataCaptureConfig therefore turns
capture off for the new fleet only, as SageMaker's does."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from greenshift.capture.rules import CaptureRule, rule_from_config
from greenshift.registry.api import Registry


@dataclass(frozen=True)
class FleetCapture:
    fleet_id: str
    endpoint: str
    variant: str
    config_name: str
    rule: CaptureRule | None


class FleetCaptures:
    """fleet id -> FleetCapture, cached; unknown fleets are asked again on every call."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._known: dict[str, FleetCapture] = {}
        self._lock = threading.Lock()

    def get(self, fleet_id: str) -> FleetCapture | None:
        with self._lock:
            found = self._known.get(fleet_id)
        if found is not None:
            return found
        fleet = self.registry.get_fleet(fleet_id)
        if fleet is None:
            return None
        config = self.registry.get_endpoint_config(fleet.config_name)
        spec = config.spec if config is not None else {}
        found = FleetCapture(
            fleet_id=fleet_id,
            endpoint=fleet.endpoint,
            variant=fleet.variant,
            config_name=fleet.config_name,
            rule=rule_from_config(spec.get("DataCaptureConfig")),
        )
        with self._lock:
            self._known[fleet_id] = found
        return found

    def rules(self, fleet_ids: Iterable[str]) -> dict[str, CaptureRule]:
        """The capturing fleets among these, with their rules (what desired.compute takes)."""
        out: dict[str, CaptureRule] = {}
        for fleet_id in fleet_ids:
            found = self.get(fleet_id)
            if found is not None and found.rule is not None:
                out[fleet_id] = found.rule
        return out
