"""The CloudWatch Logs shapes Greenshift stores, and the SageMaker naming of groups and streams."""

from __future__ import annotations

from dataclasses import dataclass

GROUP_PREFIX = "/aws/sagemaker/Endpoints/"
# CloudWatch Logs counts an event as its UTF-8 message plus 26 bytes (PutLogEvents quotas).
EVENT_OVERHEAD_BYTES = 26
# CloudWatch Logs' largest event: longer lines are split into events of at most this size.
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD_BYTES


@dataclass(frozen=True)
class LogEvent:
    """One stored event. `seq` orders events (unique, increasing in insertion order) and is what
    the paging tokens point at; `timestamp` and `ingestion_time` are epoch milliseconds."""

    seq: int
    stream: str
    timestamp: int
    ingestion_time: int
    message: str

    @property
    def size(self) -> int:
        return len(self.message.encode()) + EVENT_OVERHEAD_BYTES


@dataclass(frozen=True)
class LogStream:
    group: str
    name: str
    creation_time: int
    first_event_timestamp: int | None
    last_event_timestamp: int | None
    last_ingestion_time: int | None
    stored_bytes: int


@dataclass(frozen=True)
class LogGroup:
    name: str
    creation_time: int
    stored_bytes: int


@dataclass(frozen=True)
class StreamRef:
    """Where one instance's lines go."""

    group: str
    stream: str


def group_name(endpoint: str) -> str:
    """SageMaker's log group of an endpoint."""
    return GROUP_PREFIX + endpoint


def stream_for_instance(instance_id: str) -> StreamRef | None:
    """The group and stream of an instance id `<endpoint>.<variant>.<deployment8>.<index>`
    (greenshift/naming.py; names cannot contain '.'), or None for a folder that is not one."""
    parts = instance_id.split(".")
    if len(parts) != 4 or not all(parts):
        return None
    endpoint, variant, _, _ = parts
    return StreamRef(group_name(endpoint), f"{variant}/{instance_id}")
