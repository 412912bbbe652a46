"""The chaos suite's short form (the long one is bench/chaos.py): a handful of deployments on one
real stack, each with one component SIGKILLed at a chosen moment, then every invariant checked:
the deployment ended on the expected config, no instance orphaned or missing, the registry agrees
with the processes and with HAProxy, and no request failed."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenshift.registry.sql import SqlRegistry
from tests.e2e.stack import processes_mentioning, running_stack
from tests.harness.chaos.trial import ChaosRig

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

MODELS = Path(__file__).resolve().parents[2] / "examples" / "models"


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosRig]:
    home = tmp_path_factory.mktemp("greenshift-chaos")
    with running_stack(home) as stack:
        settings = stack.settings
        chaos = ChaosRig(
            settings,
            stack.client("sagemaker"),
            stack.client("cloudwatch"),
            SqlRegistry(settings.registry_url, arn_for=settings.arn),
            str(MODELS),
        )
        chaos.setup()
        yield chaos
    assert processes_mentioning(str(home)) == []


# (strategy, component, seconds after UpdateEndpoint): the worker mid-bake of the canary,
# HAProxy while traffic shifts, an instance of the new fleet while it bakes, the control API,
# the worker during the faulty model's rollback.
TRIALS = [
    ("CANARY", "worker", 4.0),
    ("LINEAR", "haproxy", 3.0),
    ("ALL_AT_ONCE", "new-instance", 3.5),
    ("ROLLING", "api", 2.0),
    ("FAULTY", "worker", 3.0),
]


@pytest.mark.parametrize(("strategy", "component", "kill_at"), TRIALS)
def test_deployment_survives_a_sigkill(
    rig: ChaosRig, strategy: str, component: str, kill_at: float
) -> None:
    index = TRIALS.index((strategy, component, kill_at)) + 1
    result = rig.trial(index, strategy, component, random.Random(index), kill_at=kill_at)
    assert result.killed, f"nothing to kill for {component}"
    assert result.outcome == result.expected, result.as_dict()
    assert result.failed == 0, result.failures
    assert result.violations == []
    assert result.kept_pace, result.as_dict()
    if strategy == "FAULTY":
        assert result.model_errors > 0, "the faulty model was never reached"
