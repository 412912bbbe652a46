"""Test helpers for the control API: a fake WorkflowStarter and an in-thread uvicorn server.

Part of the test harness (tests/harness/) so other suites (integration, benchmarks) can run the
API the same way. Nothing here is used in production.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette

from greenshift.errors import GreenshiftError
from tests.ports import free_port


@dataclass
class StartCall:
    workflow: str
    request: dict[str, Any]
    workflow_id: str
    deployment_id: str


@dataclass
class FakeStarter:
    """Records what the API starts; `fail_with` makes the next calls raise (Temporal down)."""

    starts: list[StartCall] = field(default_factory=list)
    updates: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    fail_with: GreenshiftError | None = None
    update_result: Any = field(default_factory=lambda: {"accepted": True})

    async def start(
        self, workflow: str, request: dict[str, Any], *, workflow_id: str, deployment_id: str
    ) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.starts.append(StartCall(workflow, request, workflow_id, deployment_id))

    async def update(self, workflow_id: str, update: str, arg: dict[str, Any]) -> Any:
        if self.fail_with is not None:
            raise self.fail_with
        self.updates.append((workflow_id, update, arg))
        return self.update_result

    async def query(self, workflow_id: str, query: str) -> Any:
        if self.fail_with is not None:
            raise self.fail_with
        return {}

    async def abort_orphan(
        self, workflow_id: str, *, endpoint: str, deployment_id: str, held_for: float, arg: Any
    ) -> Any | None:
        if self.fail_with is not None:
            raise self.fail_with
        self.updates.append((workflow_id, "abort_orphan", arg))
        return self.update_result


class ServerThread:
    """uvicorn serving `app` on a free 127.0.0.1 port in a background thread."""

    def __init__(self, app: Starlette, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the API server did not start within 10 s")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
