"""Status values and reason constants: pure, shared by workflows, activities, API and CLI.

Every status change carries one of these reasons and a message; the message ends up in
`FailureReason` and the deployment's event log.
"""

from __future__ import annotations

from enum import StrEnum


class EndpointStatus(StrEnum):
    """`EndpointStatus` values Greenshift uses (botocore's enum has a few more)."""

    CREATING = "Creating"
    UPDATING = "Updating"
    ROLLING_BACK = "RollingBack"
    IN_SERVICE = "InService"
    FAILED = "Failed"
    UPDATE_ROLLBACK_FAILED = "UpdateRollbackFailed"
    DELETING = "Deleting"


IN_PROGRESS = frozenset(
    {
        EndpointStatus.CREATING,
        EndpointStatus.UPDATING,
        EndpointStatus.ROLLING_BACK,
        EndpointStatus.DELETING,
    }
)


class InstanceState(StrEnum):
    """An instance's state in the registry (`InstanceRecord.state`): written by the agent that
    runs it, read by the data plane, the placement, the healer and the API."""

    LAUNCHING = "Launching"
    IN_SERVICE = "InService"
    UNHEALTHY = "Unhealthy"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    FAILED = "Failed"


# States that should have a live process, and those that still hold a host's room and appear as
# servers in the data plane (a stopping instance drains its requests).
RUNNING_STATES = (InstanceState.LAUNCHING, InstanceState.IN_SERVICE, InstanceState.UNHEALTHY)
HOLDING_STATES = (*RUNNING_STATES, InstanceState.STOPPING)


class VariantStatus(StrEnum):
    """`VariantStatus[].Status` shown in PendingDeploymentSummary."""

    CREATING = "Creating"
    UPDATING = "Updating"
    DELETING = "Deleting"
    ACTIVATING_TRAFFIC = "ActivatingTraffic"
    BAKING = "Baking"


class DeploymentOutcome(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    ROLLED_BACK = "RolledBack"
    ROLLBACK_FAILED = "RollbackFailed"
    FAILED = "Failed"


class RollbackReason(StrEnum):
    """Why a deployment handed over to rollback (habit 6: one flag, one reason)."""

    ALARM = "Alarm"
    DEADLINE = "MaximumExecutionTimeout"
    PROVISION_FAILED = "ProvisionFailed"
    STEP_FAILED = "StepFailed"
    ABORTED = "Aborted"
