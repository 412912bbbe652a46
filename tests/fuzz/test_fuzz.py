"""Short form of the fuzz suite (bench/fuzz.py runs the long one): random valid-ish and malformed
requests against a real stack. No Greenshift 5xx, always an answer, a rejected request changes
nothing, and the runtime keeps serving; one pass with SigV4 keys configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack, processes_mentioning, running_stack
from tests.harness.fuzzing import fixtures
from tests.harness.fuzzing.control import Keys
from tests.harness.fuzzing.runner import (
    ControlApi,
    FuzzReport,
    fuzz_control,
    fuzz_runtime,
    invoke_ok,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"
KEYS = Keys("fuzzkey", "fuzzsecret")


def _stack(tmp: pytest.TempPathFactory, extra_env: dict[str, str] | None) -> Iterator[Stack]:
    with running_stack(tmp.mktemp("greenshift-fuzz"), extra_env=extra_env) as running:
        fixtures.create(
            running.client("sagemaker"), running.client("cloudwatch"), EXAMPLES / "echo-v1"
        )
        yield running
    assert processes_mentioning(str(running.settings.home_dir)) == []


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from _stack(tmp_path_factory, None)


def _findings(report: FuzzReport) -> list[str]:
    return [f"{f.target} {f.label}: {f.problem}\n{f.request[:300]!r}" for f in report.findings]


def test_control_api_survives_random_and_malformed_requests(stack: Stack) -> None:
    s = stack.settings
    report = fuzz_control(
        ControlApi(s.host, s.api_port, None), 200, 60, 7, fixtures.NAMES, FuzzReport()
    )
    assert report.total >= 100
    assert _findings(report) == []
    assert len(report.cases) >= 20, "cases should spread over the operations"
    assert invoke_ok(s.host, s.runtime_port, fixtures.ENDPOINT)
    assert _restarts(stack) == []


def _restarts(stack: Stack) -> list[str]:
    """Components the supervisor restarted: a crash even when the stack recovered."""
    return [line for line in stack.output if "exited (code" in line]


def test_runtime_survives_paths_headers_and_bodies(stack: Stack) -> None:
    s = stack.settings
    report = fuzz_runtime(s.host, s.runtime_port, fixtures.ENDPOINT, 80, 60, 11, FuzzReport())
    assert report.total >= 50
    assert _findings(report) == []
    assert invoke_ok(s.host, s.runtime_port, fixtures.ENDPOINT)
    assert _restarts(stack) == []


def test_signed_api_refuses_bad_signatures_without_a_5xx(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    keys = {"GREENSHIFT_ACCESS_KEYS": f"test:test,{KEYS.access_key}:{KEYS.secret}"}
    for running in _stack(tmp_path_factory, keys):
        s = running.settings
        api = ControlApi(s.host, s.api_port, KEYS)
        report = fuzz_control(api, 120, 45, 13, fixtures.NAMES, FuzzReport(), KEYS)
        assert _findings(report) == []
        assert report.statuses[403] > 0, "some signatures were broken on purpose"
        assert _restarts(running) == []
