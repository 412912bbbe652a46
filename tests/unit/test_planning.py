"""The planner on worked examples: one per strategy, every refusal, the retain table."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError as PydanticValidationError

from greenshift.contracts.sagemaker_shapes import (
    CapacitySize,
    DeploymentConfig,
    DesiredWeightAndCapacity,
    ProductionVariant,
    UpdateEndpointInput,
)
from greenshift.errors import ValidationError
from greenshift.planning.model import (
    BakeReason,
    BakeStep,
    Plan,
    ProvisionStep,
    Strategy,
    TerminateStep,
    TrafficStep,
    VariantSpec,
)
from greenshift.planning.planner import plan_create, plan_update, plan_weights
from greenshift.planning.render import plan_json, render_table
from greenshift.planning.rollback import rollback_steps
from greenshift.planning.sizes import (
    CANARY_LIMIT,
    LINEAR_LIMIT,
    ROLLING_LIMIT,
    blue_needed,
    instances_for,
    linear_counts,
    rollback_batch,
    rolling_counts,
)
from greenshift.planning.specs import variants_from_config

ALARMS = {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "five-xx"}]}}


def spec(name: str = "A", count: int = 3, weight: float = 1.0, model: str = "m1") -> VariantSpec:
    return VariantSpec(
        variant=name,
        model_name=model,
        instance_type="ml.m5.large",
        instance_count=count,
        weight=weight,
    )


def size(kind: str, value: int) -> CapacitySize:
    return CapacitySize.from_wire({"Type": kind, "Value": value})


def request(config: dict[str, Any] | None = None, **flags: Any) -> UpdateEndpointInput:
    body: dict[str, Any] = {"EndpointName": "e", "EndpointConfigName": "c2", **flags}
    if config is not None:
        body["DeploymentConfig"] = config
    return UpdateEndpointInput.from_wire(body)


def blue_green(kind: str, wait: int = 300, final: int = 600, **routing: Any) -> dict[str, Any]:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": kind, "WaitIntervalInSeconds": wait, **routing},
            "TerminationWaitInSeconds": final,
        },
        **ALARMS,
    }


def rolling(batch: dict[str, Any], wait: int = 60, **extra: Any) -> dict[str, Any]:
    policy = {"MaximumBatchSize": batch, "WaitIntervalInSeconds": wait, **extra}
    return {"RollingUpdatePolicy": policy, **ALARMS}


def kinds(plan: Plan) -> list[str]:
    return [p.step.kind for p in plan.steps]


# --- sizes -------------------------------------------------------------------------------------


def test_percentages_round_up_to_at_least_one_instance() -> None:
    assert instances_for(size("CAPACITY_PERCENT", 10), 3) == 1
    assert instances_for(size("CAPACITY_PERCENT", 34), 3) == 2
    assert instances_for(size("CAPACITY_PERCENT", 5), 1000) == 50
    assert instances_for(size("INSTANCE_COUNT", 2), 10) == 2


def test_limits_are_checked_on_the_requested_value() -> None:
    assert CANARY_LIMIT.allows(size("INSTANCE_COUNT", 2), 4)
    assert not CANARY_LIMIT.allows(size("INSTANCE_COUNT", 3), 4)
    assert LINEAR_LIMIT.allows(size("CAPACITY_PERCENT", 10), 3)  # 1 instance = 33 %: allowed
    assert not LINEAR_LIMIT.allows(size("INSTANCE_COUNT", 1), 11)  # 9 %
    assert ROLLING_LIMIT.allows(size("INSTANCE_COUNT", 1), 20)  # 5 %
    assert not ROLLING_LIMIT.allows(size("CAPACITY_PERCENT", 51), 20)
    assert ROLLING_LIMIT.count_range(20) == (1, 10)


def test_sequences_end_on_the_whole_fleet() -> None:
    assert rolling_counts(5, 2) == [2, 4, 5]
    assert linear_counts(4, 1) == [1, 2, 3, 4]
    assert blue_needed(2, 5, 5) == 3
    assert blue_needed(1, 3, 4) == 3  # 2/3 of 4 slots, rounded up
    assert rollback_batch(None, 4) is None
    assert rollback_batch(size("CAPACITY_PERCENT", 100), 4) is None
    assert rollback_batch(size("INSTANCE_COUNT", 1), 4) == 1


# --- strategies --------------------------------------------------------------------------------


def test_canary_follows_the_semantics_checklist() -> None:
    plan = plan_update(
        [spec()],
        [spec(model="m2")],
        request(blue_green("CANARY", CanarySize={"Type": "INSTANCE_COUNT", "Value": 1})),
    )
    assert plan.strategy is Strategy.CANARY
    assert kinds(plan) == ["provision", "traffic", "bake", "traffic", "bake", "terminate"]
    messages = [p.step.message for p in plan.steps]
    assert messages == [
        "Launching 3 instance(s).",
        "Activating traffic on canary capacity of 1 instance(s).",
        "Baking for 300 seconds (WaitIntervalInSeconds) with traffic enabled on canary "
        "capacity of 1 instance(s).",
        "Activating traffic on full capacity of 3 instance(s).",
        # The bake after the last shift and the final bake, back to back: one bake.
        "Baking for 900 seconds (WaitIntervalInSeconds 300, then TerminationWaitInSeconds 600) "
        "with traffic enabled on full capacity of 3 instance(s).",
        "Terminating 3 instance(s).",
    ]
    canary = plan.steps[1].traffic_after["A"]
    assert (canary.blue, canary.green) == (2 / 3, 1 / 3)
    final_bake = plan.steps[4].step
    assert isinstance(final_bake, BakeStep)
    assert final_bake.reason is BakeReason.FINAL and final_bake.alarms == ("five-xx",)
    assert plan.min_duration_seconds == 1200 and plan.peak_instances == 6
    assert [p.offset_seconds for p in plan.steps] == [0, 0, 0, 300, 300, 1200]


def test_all_at_once_shifts_everything_then_bakes_once_for_both_waits() -> None:
    plan = plan_update([spec()], [spec(model="m2")], request(blue_green("ALL_AT_ONCE")))
    assert kinds(plan) == ["provision", "traffic", "bake", "terminate"]
    assert plan.steps[1].traffic_after["A"].green == 1
    assert plan.steps[2].step.seconds == 900 and plan.min_duration_seconds == 900


@pytest.mark.parametrize(
    ("wait", "final", "alarms", "bakes"),
    [
        (300, 0, True, [(300, BakeReason.WAIT_INTERVAL)]),
        (0, 600, True, [(600, BakeReason.TERMINATION_WAIT)]),
        (300, 600, False, [(900, BakeReason.FINAL)]),
        # No wait at all: with alarms, one look at them at the end; without, no bake.
        (0, 0, True, [(0, BakeReason.WAIT_INTERVAL)]),
        (0, 0, False, []),
    ],
)
def test_the_final_bake_holds_both_waits(
    wait: int, final: int, alarms: bool, bakes: list[tuple[int, BakeReason]]
) -> None:
    config = blue_green("ALL_AT_ONCE", wait=wait, final=final)
    if not alarms:
        config.pop("AutoRollbackConfiguration")
    plan = plan_update([spec()], [spec(model="m2")], request(config))
    found = [(p.step.seconds, p.step.reason) for p in plan.steps if isinstance(p.step, BakeStep)]
    assert found == bakes
    assert plan.min_duration_seconds == wait + final


def test_linear_moves_one_step_per_bake() -> None:
    plan = plan_update(
        [spec(count=4)],
        [spec(count=4)],
        request(
            blue_green(
                "LINEAR", wait=60, final=0, LinearStepSize={"Type": "CAPACITY_PERCENT", "Value": 25}
            )
        ),
    )
    shares = [p.traffic_after["A"].green for p in plan.steps if p.step.kind == "traffic"]
    assert shares == [0.25, 0.5, 0.75, 1.0]
    # TerminationWaitInSeconds 0 with alarms still checks them once.
    assert plan.min_duration_seconds == 240
    assert kinds(plan)[-2:] == ["bake", "terminate"]


def test_rolling_replaces_in_batches_within_n_plus_one_batch() -> None:
    plan = plan_update(
        [spec(count=5)],
        [spec(count=5, model="m2")],
        request(
            rolling(
                {"Type": "INSTANCE_COUNT", "Value": 2},
                RollbackMaximumBatchSize={"Type": "INSTANCE_COUNT", "Value": 1},
            )
        ),
    )
    assert plan.strategy is Strategy.ROLLING
    assert kinds(plan) == ["provision", "traffic", "bake", "terminate"] * 3
    provisions = [p.step.count for p in plan.steps if isinstance(p.step, ProvisionStep)]
    terminations = [p.step.count for p in plan.steps if isinstance(p.step, TerminateStep)]
    assert provisions == [2, 4, 5] and terminations == [3, 1, 0]
    # The new fleet's record is made with its first batch; the old one is never provisioned.
    assert plan.first_provision_count("green/A") == 2
    assert plan.first_provision_count("blue/A") == 0
    assert plan.peak_instances == 7 and plan.rollback_max_batch_instances == 1
    # Rolling back from the middle brings old instances back one at a time.
    back = rollback_steps(plan, 8)  # after the second batch: blue 1, green 4
    provisioned = [s.count for s in back if isinstance(s, ProvisionStep)]
    assert provisioned == [2, 3, 4, 5]
    assert isinstance(back[-1], TerminateStep) and back[-1].count == 0


def test_without_deployment_config_variants_may_change() -> None:
    plan = plan_update([spec("A"), spec("B")], [spec("A"), spec("C", weight=2)], request())
    assert plan.strategy is Strategy.NONE
    assert kinds(plan) == ["provision", "provision", "traffic", "terminate", "terminate"]
    after = plan.steps[2].traffic_after
    assert after["B"].weight == 0 and after["C"].weight == 2 and after["A"].green == 1
    assert plan.min_duration_seconds == 0


def test_create_provisions_then_routes() -> None:
    plan = plan_create([spec("A", 2), spec("B", 1, weight=3)])
    assert kinds(plan) == ["provision", "provision", "traffic"]
    assert rollback_steps(plan, 3)[-1] == TerminateStep(
        fleet=plan.steps[1].step.fleet,  # type: ignore[union-attr]
        count=0,
        message="Terminating 1 instance(s).",
    )


def test_weights_grow_before_and_shrink_after_the_shift() -> None:
    desired = [
        DesiredWeightAndCapacity.from_wire(d)
        for d in (
            {"VariantName": "A", "DesiredInstanceCount": 1, "DesiredWeight": 0.5},
            {"VariantName": "B", "DesiredInstanceCount": 5},
        )
    ]
    plan = plan_weights([spec("A", 3), spec("B", 2)], desired)
    assert plan.strategy is Strategy.WEIGHTS
    assert kinds(plan) == ["provision", "traffic", "terminate"]
    assert plan.steps[1].traffic_after["A"].weight == 0.5


# --- retained properties and deployment config -------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "count", "weight"),
    [
        ({}, 2, 0.5),
        ({"RetainAllVariantProperties": True}, 4, 1.0),
        (
            {
                "RetainAllVariantProperties": True,
                "ExcludeRetainedVariantProperties": [
                    {"VariantPropertyType": "DesiredInstanceCount"}
                ],
            },
            2,
            1.0,
        ),
        (
            {
                "RetainAllVariantProperties": True,
                "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DesiredWeight"}],
            },
            4,
            0.5,
        ),
    ],
)
def test_retained_properties_table(flags: dict[str, Any], count: int, weight: float) -> None:
    plan = plan_update([spec("A", 4, 1.0)], [spec("A", 2, 0.5)], request(None, **flags))
    (green,) = plan.green
    assert (green.instance_count, green.weight) == (count, weight)


def test_retain_deployment_config_reuses_the_last_one() -> None:
    last = DeploymentConfig.from_wire(blue_green("ALL_AT_ONCE"))
    plan = plan_update([spec()], [spec()], request(None, RetainDeploymentConfig=True), last)
    assert plan.strategy is Strategy.ALL_AT_ONCE and plan.alarms == ("five-xx",)
    plain = plan_update([spec()], [spec()], request(None, RetainDeploymentConfig=True), None)
    assert plain.strategy is Strategy.NONE


# --- refusals ----------------------------------------------------------------------------------


def refused(
    match: str,
    current: list[VariantSpec],
    new: list[VariantSpec],
    req: UpdateEndpointInput,
    last: DeploymentConfig | None = None,
) -> str:
    with pytest.raises(ValidationError, match=match) as caught:
        plan_update(current, new, req, last)
    return caught.value.message


def test_canary_on_one_instance_says_all_at_once_works() -> None:
    message = refused(
        "ALL_AT_ONCE",
        [spec(count=1)],
        [spec(count=1)],
        request(blue_green("CANARY", CanarySize={"Type": "CAPACITY_PERCENT", "Value": 10})),
    )
    assert "at least 2 instances" in message


def test_canary_over_half_says_which_sizes_fit() -> None:
    message = refused(
        "at most 50%",
        [spec(count=4)],
        [spec(count=4)],
        request(blue_green("CANARY", CanarySize={"Type": "INSTANCE_COUNT", "Value": 3})),
    )
    assert "INSTANCE_COUNT 1-2" in message


def test_linear_step_outside_ten_to_fifty_percent() -> None:
    message = refused(
        "10-50%",
        [spec(count=20)],
        [spec(count=20)],
        request(blue_green("LINEAR", LinearStepSize={"Type": "INSTANCE_COUNT", "Value": 1})),
    )
    assert "INSTANCE_COUNT 2-10" in message
    refused(
        "ALL_AT_ONCE",
        [spec(count=1)],
        [spec(count=1)],
        request(blue_green("LINEAR", LinearStepSize={"Type": "CAPACITY_PERCENT", "Value": 50})),
    )


def test_missing_sizes_are_refused() -> None:
    refused("needs a CanarySize", [spec()], [spec()], request(blue_green("CANARY")))
    refused("needs a LinearStepSize", [spec()], [spec()], request(blue_green("LINEAR")))


def test_rolling_batch_outside_five_to_fifty_percent() -> None:
    message = refused(
        "5-50%",
        [spec(count=10)],
        [spec(count=10)],
        request(rolling({"Type": "INSTANCE_COUNT", "Value": 6})),
    )
    assert "INSTANCE_COUNT 1-5" in message


def test_rolling_is_refused_for_multi_variant_configs() -> None:
    refused(
        "BlueGreenUpdatePolicy",
        [spec("A"), spec("B")],
        [spec("A"), spec("B")],
        request(rolling({"Type": "CAPACITY_PERCENT", "Value": 20})),
    )


def test_variant_names_must_be_kept_with_a_deployment_config() -> None:
    message = refused(
        "keep the endpoint's variant names",
        [spec("A")],
        [spec("B")],
        request(blue_green("ALL_AT_ONCE")),
    )
    assert "without a DeploymentConfig" in message


def test_both_policies_are_refused() -> None:
    config = {**blue_green("ALL_AT_ONCE"), **rolling({"Type": "CAPACITY_PERCENT", "Value": 20})}
    refused("not both", [spec()], [spec()], request(config))


def test_retain_and_a_deployment_config_are_refused_together() -> None:
    refused(
        "not both",
        [spec()],
        [spec()],
        request(blue_green("ALL_AT_ONCE"), RetainDeploymentConfig=True),
    )


def test_waits_longer_than_the_deadline_are_refused_up_front() -> None:
    config = blue_green(
        "CANARY", wait=600, final=600, CanarySize={"Type": "INSTANCE_COUNT", "Value": 1}
    )
    config["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] = 1800
    message = refused("1800", [spec()], [spec()], request(config))
    assert "above 1800" in message
    config["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] = 1801
    assert plan_update([spec()], [spec()], request(config)).max_execution_timeout_seconds == 1801


def test_weights_refusals() -> None:
    def weights(*items: dict[str, Any]) -> list[DesiredWeightAndCapacity]:
        return [DesiredWeightAndCapacity.from_wire(i) for i in items]

    with pytest.raises(ValidationError, match="no variant Z; its variants are A"):
        plan_weights([spec("A")], weights({"VariantName": "Z", "DesiredWeight": 1}))
    with pytest.raises(ValidationError, match="twice"):
        plan_weights(
            [spec("A")],
            weights(
                {"VariantName": "A", "DesiredWeight": 1}, {"VariantName": "A", "DesiredWeight": 2}
            ),
        )
    with pytest.raises(ValidationError, match="DesiredWeight to 0"):
        plan_weights([spec("A")], weights({"VariantName": "A", "DesiredInstanceCount": 0}))


# --- specs and rendering -----------------------------------------------------------------------


def test_variants_from_config_applies_defaults_and_checks_models() -> None:
    pv = ProductionVariant.from_wire(
        {
            "VariantName": "A",
            "ModelName": "m",
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 2,
        }
    )
    (made,) = variants_from_config([pv], {"m": object()})
    assert (made.weight, made.instance_count, made.startup_timeout_seconds) == (1.0, 2, 600)
    with pytest.raises(ValidationError, match='Could not find model "m"'):
        variants_from_config([pv], {})


def test_rendered_table_shows_timeline_peak_and_duration() -> None:
    plan = plan_update(
        [spec()],
        [spec(model="m2")],
        request(blue_green("CANARY", CanarySize={"Type": "INSTANCE_COUNT", "Value": 1})),
    )
    text = render_table(plan)
    assert "blue/A 66.7% green/A 33.3%" in text
    assert "300s, watching five-xx" in text
    assert "peak instances:   6" in text and "minimum duration: 0:20:00" in text
    assert Plan.model_validate_json(plan_json(plan)) == plan
    assert isinstance(plan.steps[1].step, TrafficStep)


def test_plans_recorded_with_undo_steps_still_load() -> None:
    # Plans made before issue 13 carry an unused `undo` per step (recorded histories, registry
    # rows); they load as the same plan, while any other unknown key is still refused.
    plan = plan_update([spec()], [spec(model="m2")], request(blue_green("ALL_AT_ONCE")))
    legacy = plan.model_dump(mode="json")
    for planned in legacy["steps"]:
        planned["undo"] = [planned["step"]]
    assert Plan.model_validate(legacy) == plan
    legacy["steps"][0]["surprise"] = 1
    with pytest.raises(PydanticValidationError):
        Plan.model_validate(legacy)
