"""Deterministic orchestration only: one module per operation. Workflow modules import the
standard library, temporalio and pure project modules (through the sandbox), never I/O."""

from __future__ import annotations

from workflows.create_endpoint import CreateEndpoint
from workflows.delete_endpoint import DeleteEndpoint
from workflows.drain_host import DrainHost
from workflows.replace_instances import ReplaceInstances
from workflows.rollout_group import RolloutGroup
from workflows.settle_endpoint import SettleEndpoint
from workflows.update_endpoint import UpdateEndpoint
from workflows.update_weights import UpdateEndpointWeightsAndCapacities

ALL_WORKFLOWS = [
    CreateEndpoint,
    UpdateEndpoint,
    DeleteEndpoint,
    UpdateEndpointWeightsAndCapacities,
    RolloutGroup,
    SettleEndpoint,  # started by worker/reconciler.py, never by a client
    ReplaceInstances,
    DrainHost,
]

__all__ = [
    "ALL_WORKFLOWS",
    "CreateEndpoint",
    "DeleteEndpoint",
    "DrainHost",
    "ReplaceInstances",
    "RolloutGroup",
    "SettleEndpoint",
    "UpdateEndpoint",
    "UpdateEndpointWeightsAndCapacities",
]
