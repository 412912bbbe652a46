"""The registry's interface: the record and the lock of everything Greenshift runs.

`greenshift.registry.sql.SqlRegistry` implements it over SQLAlchemy 2 (SQLite file by default, WAL,
safe for several processes; PostgreSQL by URL). Methods are synchronous: callers on an event loop
run them in a thread. Missing records return None (or False for deletes); a name already taken,
or a compare-and-set that lost, raises (greenshift.errors). Names are unique case-insensitively
and keep their case.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from greenshift.registry.records import (
    DeploymentEvent,
    DeploymentRecord,
    EndpointConfigRecord,
    EndpointRecord,
    EndpointRouting,
    FleetRecord,
    InstanceRecord,
    ModelRecord,
    Page,
    PendingDeployment,
    RoutingFence,
    RoutingRecord,
    VariantState,
)
from greenshift.status import DeploymentOutcome, EndpointStatus


class ListQuery(BaseModel):
    """The List* filters botocore offers (all optional). Time filters are exclusive bounds;
    `name_contains` matches case-insensitively. Models and endpoint configs have no status or
    last-modified time: those filters (and sort_by "Status") apply to endpoints only."""

    name_contains: str | None = None
    creation_time_after: datetime | None = None
    creation_time_before: datetime | None = None
    last_modified_time_after: datetime | None = None
    last_modified_time_before: datetime | None = None
    status_equals: str | None = None
    sort_by: str = "CreationTime"  # "Name" | "CreationTime" | "Status"
    sort_order: str = "Descending"  # "Ascending" | "Descending"
    max_results: int = Field(default=10, ge=1, le=100)
    next_token: str | None = None


class Registry(Protocol):
    # --- models and endpoint configs -------------------------------------------------------
    def create_model(self, record: ModelRecord) -> None:
        """Raises ResourceInUse("Cannot create already existing model \"<arn>\".")."""

    def get_model(self, name: str) -> ModelRecord | None: ...
    def delete_model(self, name: str) -> bool: ...
    def list_models(self, query: ListQuery) -> Page[ModelRecord]: ...

    def create_endpoint_config(self, record: EndpointConfigRecord) -> None: ...
    def get_endpoint_config(self, name: str) -> EndpointConfigRecord | None: ...
    def delete_endpoint_config(self, name: str) -> bool: ...
    def list_endpoint_configs(self, query: ListQuery) -> Page[EndpointConfigRecord]: ...

    def endpoints_using_config(self, config_name: str) -> list[str]:
        """Endpoints serving the config, or with a deployment in flight towards it."""

    # --- endpoints ---------------------------------------------------------------------------
    def get_endpoint(self, name: str) -> EndpointRecord | None: ...
    def list_endpoints(self, query: ListQuery) -> Page[EndpointRecord]: ...
    def count_endpoints(self) -> int: ...

    def create_endpoint(self, record: EndpointRecord, deployment: DeploymentRecord) -> None:
        """Insert the endpoint (status Creating) and its deployment in one transaction.
        Raises ResourceInUse when the name is taken (also by an endpoint still Deleting)."""

    def begin_operation(
        self,
        name: str,
        allowed: Iterable[EndpointStatus],
        new_status: EndpointStatus,
        deployment: DeploymentRecord,
    ) -> EndpointRecord:
        """Compare-and-set: take the endpoint for one operation. Atomically checks that it exists,
        that its status is in `allowed` and that no deployment holds it, then sets `new_status`,
        `current_deployment_id` and inserts `deployment`. Idempotent for the same deployment_id
        (a retried activity gets the record back). Raises ResourceNotFound, or ResourceInUse with
        the SEMANTICS.md message for the status it found."""

    def save_endpoint(self, record: EndpointRecord) -> EndpointRecord:
        """Write the record if its `revision` is still the stored one; returns it with the
        revision bumped. Raises ConflictError otherwise."""

    def set_status(
        self, name: str, deployment_id: str, status: EndpointStatus, reason: str | None = None
    ) -> EndpointRecord:
        """Change the status of an endpoint held by `deployment_id` (ConflictError if another
        deployment holds it)."""

    def set_progress(
        self, name: str, deployment_id: str, pending: PendingDeployment | None
    ) -> None: ...

    def record_progress(
        self,
        name: str,
        deployment_id: str,
        pending: PendingDeployment | None,
        event: DeploymentEvent,
    ) -> None:
        """`set_progress` and `append_event` in one transaction (the endpoint must be held by
        `deployment_id`, else nothing is written). What is already stored (the same pending, an
        event with the same key) is not written again."""

    def finish_operation(
        self,
        name: str,
        deployment_id: str,
        *,
        status: EndpointStatus,
        outcome: DeploymentOutcome,
        config_name: str | None = None,
        config_snapshot: dict[str, Any] | None = None,
        variants: Sequence[VariantState] | None = None,
        failure_reason: str | None = None,
        last_deployment_config: dict[str, Any] | None = None,
        event: DeploymentEvent | None = None,
    ) -> EndpointRecord:
        """Release the endpoint: clear `pending` and `current_deployment_id`, set the settled
        status and whatever else is given, end the deployment record, store `event` (one
        transaction). Idempotent."""

    def delete_endpoint_record(self, name: str, deployment_id: str) -> bool:
        """Remove an endpoint (held by deployment_id) with its routing; fleets and instances
        must already be gone."""

    # --- rollout groups' holds (issue 18) --------------------------------------------------
    def hold_endpoints(self, group: str, names: Sequence[str], at: datetime) -> dict[str, str]:
        """Hold every named endpoint for `group`, all or none: each must be InService with
        nothing running, and not held by another group. Holding again for the same group is a
        no-op. Returns each endpoint's current EndpointConfigName (what a rollback restores)."""

    def release_endpoints(self, group: str) -> None:
        """Release everything `group` holds. Idempotent."""

    def endpoint_holder(self, name: str) -> str | None: ...

    # --- deployments and events ------------------------------------------------------------
    def get_deployment(self, deployment_id: str) -> DeploymentRecord | None: ...
    def list_deployments(
        self, endpoint: str | None = None, limit: int = 50
    ) -> list[DeploymentRecord]: ...
    def update_deployment(self, record: DeploymentRecord) -> None: ...
    def append_event(self, event: DeploymentEvent) -> DeploymentEvent:
        """Append to the log; an event whose `key` is already stored is not added again."""

    def list_events(
        self, deployment_id: str, after_seq: int = 0, limit: int = 1000
    ) -> list[DeploymentEvent]: ...

    # --- fleets and instances --------------------------------------------------------------
    def upsert_fleet(self, record: FleetRecord) -> None: ...
    def get_fleet(self, fleet_id: str) -> FleetRecord | None: ...
    def list_fleets(
        self, endpoint: str | None = None, include_retired: bool = False
    ) -> list[FleetRecord]: ...
    def instance_types(self, fleet_ids: Collection[str]) -> dict[str, str]:
        """Fleet id -> its instance type, for those of `fleet_ids` that have a record (one
        read however many: placement weighs the room every fleet on a host takes)."""

    def upsert_instance(self, record: InstanceRecord) -> None: ...
    def upsert_instances(self, records: Sequence[InstanceRecord]) -> None:
        """Several instances in one write (an agent's launches, or the instances one look
        found healthy): the data plane sees one change, not one per instance."""

    def get_instance(self, instance_id: str) -> InstanceRecord | None: ...
    def list_instances(
        self, fleet_id: str | None = None, endpoint: str | None = None, host: str | None = None
    ) -> list[InstanceRecord]: ...
    def delete_instance(self, instance_id: str) -> bool: ...
    def delete_instances(self, instance_ids: Sequence[str]) -> int:
        """Several instances in one write; how many there were ("not found" is success)."""

    def count_instances(self) -> int:
        """Instances that exist or are being launched (not Stopped): the quota's current use."""

    def stopping_reasons(self, host: str) -> list[str]:
        """Why each instance on `host` that is being stopped is (its state reason, "" if none):
        what a host's heartbeat looks at, every second, without reading every instance."""

    # --- routing ---------------------------------------------------------------------------
    def set_routing(self, routing: EndpointRouting, fence: RoutingFence | None = None) -> int:
        """Store the desired routing of an endpoint and return its new version. Writing the same
        routing again returns the stored version unchanged (idempotent). With a `fence`, the
        write is refused (StaleRouting, nothing written) unless its deployment holds the
        endpoint and no later step of that deployment wrote first."""

    def get_routing(self, endpoint: str) -> RoutingRecord | None: ...
    def list_routing(self) -> list[RoutingRecord]: ...
    def mark_applied(self, endpoint: str, version: int) -> None:
        """The router controller reports the version the data plane has (never goes back)."""

    def routing_generation(self) -> int:
        """A number that changes whenever any routing, fleet or instance record changes: the
        router controller's cheap "anything new?" poll."""

    def mark_generation_applied(self, generation: int) -> None:
        """The router controller reports that the data plane reflects every routing, fleet and
        instance record up to `generation` (e.g. an instance marked Stopping is out of rotation)."""

    def applied_generation(self) -> int:
        """The last generation the router controller reported (0 if none)."""

    # --- tags (greenshift.registry.tags) ------------------------------------------------------
    def list_tags(self, arn: str) -> list[tuple[str, str]]: ...
    def add_tags(self, arn: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Add or overwrite; ValidationError past 50 tags on the resource."""

    def replace_tags(self, arn: str, pairs: Sequence[tuple[str, str]]) -> None: ...
    def delete_tags(self, arn: str, keys: Sequence[str]) -> None: ...
