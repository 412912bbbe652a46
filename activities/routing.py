"""Pure translation of a plan's TrafficStep into the registry's EndpointRouting.

The planner speaks of roles ("A: blue 0.9 / green 0.1"); the data plane needs fleet ids. Blue
fleet ids come from the endpoint's variants (VariantState.fleet_id), green ones from
`greenshift.naming.fleet_id`; both arrive here as one map keyed by `FleetRef.key`.
"""

from __future__ import annotations

from collections.abc import Mapping

from greenshift.names import fleet_key
from greenshift.planning.model import Role, TrafficStep
from greenshift.planning.specs import DEFAULT_ROUTING
from greenshift.registry.records import EndpointRouting, FleetRoute, VariantRoute


def routing_for(
    endpoint: str,
    step: TrafficStep,
    fleets: Mapping[str, str],
    routing_strategies: Mapping[str, str] | None = None,
) -> EndpointRouting:
    """The absolute routing after `step`. Fleets with no share are left out (the router stops
    sending them traffic); a share for a fleet that has no id is a bug in the caller.
    `routing_strategies` maps a fleet key (`FleetRef.key`) to the RoutingStrategy of the config
    that fleet runs (`Plan.routing_strategies()`); a missing key is SageMaker's default."""
    variants: list[VariantRoute] = []
    for variant in sorted(step.variants):
        traffic = step.variants[variant]
        routes: list[FleetRoute] = []
        for role, share in ((Role.BLUE, traffic.blue), (Role.GREEN, traffic.green)):
            if share <= 0:
                continue
            key = fleet_key(role, variant)
            if key not in fleets:
                raise KeyError(f"no fleet id for {key}")
            strategy = (routing_strategies or {}).get(key, DEFAULT_ROUTING)
            routes.append(FleetRoute(fleet_id=fleets[key], share=share, routing_strategy=strategy))
        # The variant's own strategy: the one of the fleet that will keep it (green, when it has
        # traffic), for readers that look at the variant only.
        kept = routes[-1].routing_strategy if routes else None
        variants.append(
            VariantRoute(
                variant=variant,
                weight=traffic.weight,
                routing_strategy=kept or DEFAULT_ROUTING,
                fleets=routes,
            )
        )
    return EndpointRouting(endpoint=endpoint, variants=variants)
