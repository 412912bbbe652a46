"""Deterministic orchestration only: one module per operation. Workflow modules import the
standard library, temporalio and pure project modules (through the sandbox), never I/O."""

from __future__ import annotations

from workflows.create_endpoint import CreateEndpoint
from workflows.delete_endpoint import DeleteEndpoint
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
]

__all__ = [
    "ALL_WORKFLOWS",
    "CreateEndpoint",
    "DeleteEndpoint",
    "RolloutGroup",
    "SettleEndpoint",
    "UpdateEndpoint",
    "UpdateEndpointWeightsAndCapacities",
]
