"""The embedded Temporal listens on loopback whatever --host says (issue 14 item 1): it has no
authentication, and a workflow started on it is a deployment."""

from __future__ import annotations

from pathlib import Path

from greenshift.settings import Settings
from greenshift.supervisor import components


def test_embedded_temporal_binds_loopback_even_when_the_stack_listens_everywhere(
    tmp_path: Path,
) -> None:
    stack = {c.name: c for c in components(Settings(home=tmp_path, host="0.0.0.0"))}
    argv = stack["temporal"].argv
    assert argv[argv.index("--ip") + 1] == "127.0.0.1"
    assert "--ui-ip" not in argv  # the UI follows --ip
