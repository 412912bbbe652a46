"""The one way to get a Temporal client (STYLE.md habit 2).

Every client in Greenshift (API, CLI, worker, tests) comes from `connect()`, so all of them use
the pydantic data converter: workflow inputs, activity inputs and update payloads are pydantic
models or plain JSON, and a `datetime` survives the round trip.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from greenshift.settings import Settings


async def connect(settings: Settings, target: str | None = None) -> Client:
    """A client of the Temporal frontend in `settings` (or `target`, e.g. a test server)."""
    return await Client.connect(
        target or settings.temporal_target,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
