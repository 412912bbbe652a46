from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from greenshift.binaries import SERVER_STARTUP_TIMEOUT, temporal_cli, temporal_test_server


@pytest_asyncio.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server of the test's own (it starts in about 0.1 s).

    Time is global to a test server, and any workflow task or activity scheduled on a queue
    that nobody polls any more locks its skipping: one workflow a test left behind, woken by a
    timer, would make every later test on a shared server wait in real time."""
    environment = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=temporal_test_server(),
        test_server_startup_timeout=SERVER_STARTUP_TIMEOUT,
    )
    try:
        yield environment
    finally:
        await environment.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (real time) on a free port, for crash and CLI tests."""
    environment = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_cli(),
        dev_server_startup_timeout=SERVER_STARTUP_TIMEOUT,
    )
    try:
        yield environment
    finally:
        await environment.shutdown()
