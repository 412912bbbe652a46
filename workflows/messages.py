"""Payloads of the deployment workflows' signal, updates and query: what the API, the CLI and
the alarm watcher send to a running deployment. Pure pydantic, importable anywhere."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

# Handler names, as `temporal workflow update execute --name ...` and the API use them.
from greenshift.names import ABORT as ABORT
from greenshift.names import ALARM_TRIPPED as ALARM_TRIPPED
from greenshift.names import PAUSE as PAUSE
from greenshift.names import PROGRESS as PROGRESS
from greenshift.names import PROMOTE as PROMOTE
from greenshift.names import RESUME as RESUME


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlarmTripped(_Message):
    """Sent by the worker's alarm watcher when an alarm a deployment watches is in ALARM."""

    name: str
    reason: str = ""


class ControlRequest(_Message):
    """pause / resume / promote / abort: who asks, and why (kept in the event log)."""

    actor: str = "unknown"
    reason: str = ""


class ControlResult(_Message):
    accepted: bool
    message: str


class ProgressView(_Message):
    """The `progress` query: where the deployment is right now."""

    phase: str
    step_index: int | None = None
    step_count: int = 0
    paused: bool = False
    baking: bool = False
    bake_ends_at: datetime | None = None
    rolling_back: bool = False
    abort_reason: str | None = None
    abort_message: str | None = None
    finished: bool = False
