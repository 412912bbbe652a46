"""The chaos suite's hung components and terminated workflows (issue 14): on one real stack,
deployments under steady traffic while

- a component hangs (SIGSTOP: alive, holding its ports, answering nothing) — a model instance
  (the fleet agent sees it fail /ping, takes it out of rotation and replaces it), the worker (the
  supervisor notices the hung worker and restarts it; the restarted worker finishes the
  deployment), the control API (restarted by the supervisor), the alarm evaluator (alarms go
  stale: the deployment holds traffic where it is until they are evaluated again);
- the endpoint's workflow is terminated with the real `temporal workflow terminate` mid-canary,
  mid-rolling batch and mid-rollback: the reconciler settles the endpoint back on its serving
  fleet; right after the first, AbortDeployment is accepted (the API settles it at once).

Then the invariants of the kill trials: nothing stuck, nothing orphaned, the registry, the
processes and HAProxy agree, no request lost (a hung instance loses the requests it already
held; none sent after it left rotation), every hung process replaced. Each trial is bounded
(90 s); every stopped process is continued at its end, every process stopped with the stack.

The stack runs with shorter supervision (health checked every 2 s, a component failing for 6 s
is restarted; defaults 5 s and 20 s) and alarms stale after 5 s, so each trial stays short.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from greenshift.client import GreenshiftClient
from greenshift.registry.sql import SqlRegistry
from tests.e2e.stack import processes_mentioning, running_stack
from tests.harness.chaos.trial import ChaosRig, TrialResult

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MODELS = Path(__file__).resolve().parents[2] / "examples" / "models"
TRIAL_SECONDS = 90.0
FAST_SUPERVISION = {
    "GREENSHIFT_HEALTH_CHECK_SECONDS": "2",
    "GREENSHIFT_UNHEALTHY_RESTART_SECONDS": "6",
    "GREENSHIFT_ALARM_STALE_SECONDS": "5",
}


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosRig]:
    home = tmp_path_factory.mktemp("greenshift-hangs")
    with running_stack(home, extra_env=FAST_SUPERVISION) as stack:
        settings = stack.settings.model_copy(update={"alarm_stale_seconds": 5.0})
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


def run(rig: ChaosRig, index: int, strategy: str, component: str, **kw: Any) -> TrialResult:
    result = rig.trial(index, strategy, component, random.Random(index), **kw)
    print(result.as_dict())  # the figures, with -s
    assert result.outcome == result.expected, result.as_dict()
    assert result.violations == [], result.as_dict()
    assert result.kept_pace, result.as_dict()
    assert result.seconds <= TRIAL_SECONDS, result.as_dict()
    return result


# --- hung components ---------------------------------------------------------------------------


def test_a_hung_instance_leaves_rotation_and_is_replaced(rig: ChaosRig) -> None:
    result = run(rig, 1, "ALL_AT_ONCE", "new-instance", fault="stop", kill_at=3.5)
    assert len(result.killed) == 1
    assert result.replaced_after is not None  # the agent killed it: unhealthy too long
    assert result.out_of_rotation_after is not None and result.out_of_rotation_after < 6
    # Requests already on the hung instance time out (the data plane does not retry a request
    # the model has taken); none sent after it left rotation fails.
    assert result.failed_after_rotation == 0, result.failures


def test_a_hung_worker_is_restarted_and_finishes_the_deployment(rig: ChaosRig) -> None:
    result = run(rig, 2, "CANARY", "worker", fault="stop", kill_at=4.0)
    assert result.killed and result.replaced_after is not None
    assert result.failed == 0, result.failures


def test_a_hung_api_is_restarted(rig: ChaosRig) -> None:
    result = run(rig, 3, "ROLLING", "api", fault="stop", kill_at=2.0)
    assert result.killed and result.replaced_after is not None
    assert result.failed == 0, result.failures


def test_a_hung_alarm_evaluator_holds_the_traffic(rig: ChaosRig) -> None:
    # The faulty model's LINEAR deployment with the evaluator stopped from the start: at the
    # end of the first bake its alarm is stale, so traffic stays at the first step (no rise
    # while stale: checked from the samples) until the restarted evaluator trips the alarm.
    result = run(rig, 4, "FAULTY", "metrics", fault="stop", kill_at=0.3)
    assert result.killed and result.replaced_after is not None
    assert result.held_samples > 0, "the deployment never served on stale alarms: no hold seen"
    assert result.model_errors > 0, "the faulty model was never reached"
    assert result.failed == 0, result.failures


# --- terminated workflows ----------------------------------------------------------------------


def abort_now(rig: ChaosRig) -> Any:
    def abort(endpoint: str) -> dict[str, Any]:
        client = GreenshiftClient(rig.settings)
        try:
            return client.call("AbortDeployment", {"EndpointName": endpoint, "Reason": "chaos"})
        finally:
            client.close()

    return abort


def test_terminated_mid_canary_is_settled_and_abort_is_accepted_at_once(rig: ChaosRig) -> None:
    result = run(
        rig,
        5,
        "CANARY",
        "workflow",
        fault="terminate",
        kill_at=0.5,
        at_phase="Updating/Baking",
        abort=abort_now(rig),
    )
    assert result.phase_at_kill.startswith("Updating/Baking"), result.phase_at_kill
    assert 0 < result.share_at_fault < 1  # the canary carried traffic
    assert result.abort["Result"]["accepted"] is True, result.abort
    assert result.failed == 0, result.failures


def test_terminated_mid_rolling_batch_is_settled(rig: ChaosRig) -> None:
    # The second batch's bake: one old instance already retired, so settling launches it again.
    result = run(
        rig,
        6,
        "ROLLING",
        "workflow",
        fault="terminate",
        kill_at=0.5,
        at_phase="Updating/Baking",
        nth=2,
    )
    assert result.phase_at_kill.startswith("Updating/Baking"), result.phase_at_kill
    assert result.share_at_fault > 0
    assert result.failed == 0, result.failures


def test_terminated_mid_rollback_is_settled(rig: ChaosRig) -> None:
    result = run(
        rig, 7, "FAULTY", "workflow", fault="terminate", kill_at=0.5, at_phase="RollingBack"
    )
    assert result.phase_at_kill.startswith("RollingBack"), result.phase_at_kill
    assert result.model_errors > 0
    assert result.failed == 0, result.failures
