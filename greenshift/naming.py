"""Derived identifiers. Ids are computed, never random at the point of use, so a retried
activity finds what its first attempt made (habit 4). All are valid HAProxy server/backend names
(letters, digits, '-', '_', '.')."""

from __future__ import annotations


def workflow_id(endpoint: str) -> str:
    """One operation in flight per endpoint: the workflow id is `endpoint/<name>` (DESIGN.md)."""
    return f"endpoint/{endpoint}"


def fleet_id(endpoint: str, deployment_id: str, variant: str) -> str:
    """The fleet a deployment makes for one variant: `<endpoint>.<variant>.<deployment>`."""
    return f"{endpoint}.{variant}.{short_deployment(deployment_id)}"


def instance_id(fleet: str, index: int) -> str:
    return f"{fleet}.{index}"


def short_deployment(deployment_id: str) -> str:
    """The last 8 characters of a deployment id, enough to tell fleets of one endpoint apart."""
    return deployment_id.replace("-", "")[-8:]
