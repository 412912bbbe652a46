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
