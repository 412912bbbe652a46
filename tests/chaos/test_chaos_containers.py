"""Chaos with containers: the rig's echo-v2 is the example container image, so a deployment to
it runs containers; one of its containers is SIGKILLed mid-deployment (ALL_AT_ONCE, while the new
fleet bakes), the worker in another (CANARY back to the built-in model). The same invariants as
the chaos suite: the deployment ends where it should, nothing stuck, nothing orphaned (no
container without an InService record, none missing), no request failed."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenshift.registry.sql import SqlRegistry
from tests.docker_support import (
    IMAGE,
    build_images,
    our_containers,
    remove_containers,
    require_engine,
)
from tests.e2e.stack import processes_mentioning, running_stack
from tests.harness.chaos.trial import ChaosRig

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "examples" / "models"
CONTAINER_MODEL = ROOT / "examples" / "container" / "model"


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosRig]:
    require_engine()
    build_images(tmp_path_factory.mktemp("images"))
    home = tmp_path_factory.mktemp("greenshift-chaos-containers").resolve()
    try:
        with running_stack(home) as stack:
            settings = stack.settings
            registry = SqlRegistry(settings.registry_url, arn_for=settings.arn)
            chaos = ChaosRig(
                settings,
                stack.client("sagemaker"),
                stack.client("cloudwatch"),
                registry,
                str(MODELS),
                containers={"echo-v2": (IMAGE, str(CONTAINER_MODEL))},
            )
            chaos.setup()
            yield chaos
            registry.close()
        assert our_containers(home) == []
        assert processes_mentioning(str(home)) == []
    finally:
        assert remove_containers(home) == []


# Trial 1 deploys echo-v2 (containers) and kills one of them; trial 2 goes back to echo-v1.
TRIALS = [("ALL_AT_ONCE", "new-instance", 3.5), ("CANARY", "worker", 4.0)]


@pytest.mark.parametrize(("strategy", "component", "kill_at"), TRIALS)
def test_container_deployment_survives_a_sigkill(
    rig: ChaosRig, strategy: str, component: str, kill_at: float
) -> None:
    index = TRIALS.index((strategy, component, kill_at)) + 1
    result = rig.trial(index, strategy, component, random.Random(index), kill_at=kill_at)
    assert result.killed, f"nothing to kill for {component}"
    assert result.outcome == result.expected, result.as_dict()
    assert result.failed == 0, result.failures
    assert result.violations == []
    assert result.kept_pace, result.as_dict()
