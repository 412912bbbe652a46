"""One endpoint, one operation in flight: a deployment takes the endpoint (compare-and-set under
the endpoint row's lock), changes it while it holds it, and releases it when it finishes; the
deployment record ends in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select

from greenshift import messages
from greenshift.errors import ConflictError, ResourceInUse
from greenshift.groups.model import group_of
from greenshift.registry import schema as t
from greenshift.registry.records import (
    DeploymentEvent,
    DeploymentRecord,
    EndpointRecord,
    VariantState,
)
from greenshift.registry.sql_base import (
    SqlBase,
    bump_generation,
    lock_endpoint,
    lock_generation,
    not_held,
    set_endpoint_columns,
    write_endpoint,
)
from greenshift.registry.sql_deployments import (
    deployment_ended,
    deployment_exists,
    end_deployment,
    insert_deployment,
)
from greenshift.registry.sql_rows import event_values
from greenshift.status import IN_PROGRESS, DeploymentOutcome, EndpointStatus

# The rollout group holding an endpoint, if any (every begin reads it): built once.
_HOLDER = select(t.endpoint_holds.c.group_name).where(
    t.endpoint_holds.c.endpoint_lower == bindparam("key")
)


class SqlOperations(SqlBase):
    """Begin, change and finish an operation on an endpoint (its progress: sql_progress)."""

    def begin_operation(
        self,
        name: str,
        allowed: Iterable[EndpointStatus],
        new_status: EndpointStatus,
        deployment: DeploymentRecord,
    ) -> EndpointRecord:
        allowed_set = frozenset(EndpointStatus(s) for s in allowed)
        key = name.lower()

        def begin(conn: Connection) -> EndpointRecord:  # every refusal before any write
            record = lock_endpoint(conn, key)
            if record is None:
                raise self._missing("endpoint", name)
            if record.current_deployment_id == deployment.deployment_id:
                return record  # a retried activity: it already holds the endpoint
            check_can_begin(record, allowed_set)
            check_group_hold(conn, key, record.arn, deployment.deployment_id)
            if deployment_exists(conn, deployment.deployment_id):
                raise ConflictError(
                    f"Deployment {deployment.deployment_id} already ran on endpoint "
                    f'"{record.arn}"; start a new deployment.'
                )
            changes: dict[str, Any] = {
                "status": EndpointStatus(new_status),
                "current_deployment_id": deployment.deployment_id,
                "revision": record.revision + 1,
                "last_modified": self._clock(),
            }
            set_endpoint_columns(conn, key, {**changes, "status": EndpointStatus(new_status).value})
            insert_deployment(conn, deployment)
            return record.model_copy(update=changes)

        return self._in_batch(begin)

    def set_status(
        self, name: str, deployment_id: str, status: EndpointStatus, reason: str | None = None
    ) -> EndpointRecord:
        """`reason`, when given, becomes the FailureReason; None leaves it as it is."""
        changes: dict[str, Any] = {"status": EndpointStatus(status)}
        if reason is not None:
            changes["failure_reason"] = reason
        return self._change_held(name, deployment_id, changes, touch=True)

    def _change_held(
        self, name: str, deployment_id: str, changes: dict[str, Any], *, touch: bool
    ) -> EndpointRecord:
        key = name.lower()
        with self._write() as conn:
            record = lock_endpoint(conn, key)
            if record is None:
                raise self._missing("endpoint", name)
            if record.current_deployment_id != deployment_id:
                raise not_held(record, deployment_id)
            changes = {**changes, "revision": record.revision + 1}
            if touch:
                changes["last_modified"] = self._clock()
            updated = record.model_copy(update=changes)
            write_endpoint(conn, updated)
        return updated

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
        """`failure_reason` is always written (None clears it: the operation succeeded); the
        other optional fields change only when given; `event` (the Finished event) is stored in
        the same transaction. A second call for a deployment that already finished returns the
        endpoint unchanged."""
        key = name.lower()
        now = self._clock()

        def finish(conn: Connection) -> EndpointRecord:  # every refusal before any write
            record = lock_endpoint(conn, key)
            if record is None:
                raise self._missing("endpoint", name)
            if record.current_deployment_id != deployment_id:
                if deployment_ended(conn, deployment_id):
                    return record  # already finished: a retried activity
                raise not_held(record, deployment_id)
            changes: dict[str, Any] = {
                "status": EndpointStatus(status),
                "pending": None,
                "current_deployment_id": None,
                "failure_reason": failure_reason,
                "revision": record.revision + 1,
                "last_modified": now,
            }
            if config_name is not None:
                changes["config_name"] = config_name
            if config_snapshot is not None:
                changes["config_snapshot"] = config_snapshot
            if variants is not None:
                changes["variants"] = list(variants)
            if last_deployment_config is not None:
                changes["last_deployment_config"] = last_deployment_config
            updated = record.model_copy(update=changes)
            write_endpoint(conn, updated)
            end_deployment(conn, deployment_id, outcome, failure_reason, now)
            if event is not None:
                conn.execute(self._insert_event, event_values(event))
            return updated

        return self._in_batch(finish)

    def delete_endpoint_record(self, name: str, deployment_id: str) -> bool:
        """Also ends the deployment (Succeeded) if it is still running, and bumps the
        generation (the routing went away)."""
        key = name.lower()
        with self._write() as conn:
            record = lock_endpoint(conn, key)
            if record is None:
                return False
            if record.current_deployment_id != deployment_id:
                raise not_held(record, deployment_id)
            lock_generation(conn)
            conn.execute(delete(t.endpoints).where(t.endpoints.c.name_lower == key))
            conn.execute(delete(t.routing).where(t.routing.c.endpoint_lower == key))
            bump_generation(conn)
            end_deployment(conn, deployment_id, DeploymentOutcome.SUCCEEDED, None, self._clock())
        return True


def check_can_begin(record: EndpointRecord, allowed: frozenset[EndpointStatus]) -> None:
    """Refuses, with SageMaker's words, an endpoint not in an `allowed` status or already held."""
    if record.status not in allowed:
        if record.status in IN_PROGRESS:
            raise ResourceInUse(messages.in_progress_endpoint(record.arn))
        if record.status is EndpointStatus.FAILED:
            raise ResourceInUse(messages.failed_endpoint(record.arn))
        wanted = " or ".join(sorted(s.value for s in allowed)) or "nothing"
        raise ResourceInUse(
            f'Endpoint "{record.arn}" is {record.status.value}; this operation needs it '
            f"to be {wanted}."
        )
    if record.current_deployment_id is not None:
        raise ResourceInUse(messages.in_progress_endpoint(record.arn))


def check_group_hold(conn: Connection, key: str, arn: str, deployment_id: str) -> None:
    """An endpoint a rollout group holds is taken only by that group's deployments."""
    holder = conn.execute(_HOLDER, {"key": key}).scalar()
    if holder is not None and holder != group_of(deployment_id):
        raise ResourceInUse(
            f'Cannot update endpoint "{arn}": rollout group {holder} holds it until the group ends.'
        )
