"""Which fleets run as containers, read from the registry: the data plane frames their streamed
answers itself (eventstream.lua), since a container answers InvokeEndpointWithResponseStream
with a plain chunked body while the built-in model server frames its own.

The rule is the fleet agent's (greenshift.fleet.images.runtime_kind) on the fleet's image, with
one difference: the data plane does not ask the Docker Engine, so a SageMaker framework image
(scikit-learn, PyTorch) counts as the built-in runtime even where the engine holds a real image
of that name and the agent runs it as a container (README: its streams are not framed).
A fleet's image never changes, so answers are cached per fleet.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from greenshift.fleet.images import runtime_kind
from greenshift.fleet.runtime import container_of
from greenshift.registry.api import Registry


def _never_in_engine(_image: str) -> bool:
    return False


class FleetKinds:
    """fleet id -> runs as a container, cached; unknown fleets are asked again on every call."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._known: dict[str, bool] = {}
        self._lock = threading.Lock()

    def is_container(self, fleet_id: str) -> bool:
        with self._lock:
            found = self._known.get(fleet_id)
        if found is not None:
            return found
        fleet = self.registry.get_fleet(fleet_id)
        if fleet is None:
            return False
        image = str(container_of(fleet.model_spec).get("Image") or "")
        found = bool(image) and runtime_kind(image, _never_in_engine) == "container"
        with self._lock:
            self._known[fleet_id] = found
        return found

    def containers(self, fleet_ids: Iterable[str]) -> set[str]:
        return {f for f in fleet_ids if self.is_container(f)}
