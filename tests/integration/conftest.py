"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.dataplane_support import Dataplane


@pytest.fixture
def dp(tmp_path: Path) -> Iterator[Dataplane]:
    """A data plane of the test's own (HAProxy + controller on a temporary registry), closed
    after it. Tests that need it set up differently define their own `dp`."""
    plane = Dataplane(tmp_path)
    try:
        yield plane
    finally:
        plane.close()
