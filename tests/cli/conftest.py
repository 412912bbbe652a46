from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.stack import Stack, processes_mentioning, running_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One `greenshift up` per test module; nothing it started may survive it."""
    home = tmp_path_factory.mktemp("greenshift-home")
    with running_stack(home) as running:
        yield running
    assert processes_mentioning(str(running.settings.home_dir)) == []
