"""The bake rule over judge verdicts (greenshift.metrics.verdicts.decide_bake): fail rolls
back, pass passes, lacking data extends within its bounds and then pauses, never loops."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from greenshift.metrics.verdicts import (
    DEADLINE_MARGIN_SECONDS,
    MAX_EXTENSION_SECONDS,
    MIN_EXTENSION_SECONDS,
    Action,
    Outcome,
    Verdict,
    decide_bake,
    extension_step,
    max_extension,
)


def verdict(outcome: Outcome, alarm: str = "judge") -> Verdict:
    return Verdict(
        alarm=alarm,
        judge="ERROR_JUDGE",
        outcome=outcome,
        z=None if outcome is Outcome.LACKS_DATA else (5.0 if outcome is Outcome.FAIL else 0.1),
        threshold=3.5,
        new_requests=40,
        old_requests=400,
        min_requests=100,
        message=f"{alarm}: {outcome.value} (new 40, old 400 requests)",
    )


def test_no_judge_or_all_pass_passes_silently() -> None:
    assert decide_bake([], 300, 0, None).action is Action.PASS
    decision = decide_bake([verdict(Outcome.PASS)], 300, 0, None)
    assert decision.action is Action.PASS and decision.message == ""


def test_a_fail_rolls_back_naming_the_judge_even_when_another_lacks_data() -> None:
    decision = decide_bake(
        [verdict(Outcome.LACKS_DATA, "a"), verdict(Outcome.FAIL, "b")], 300, 0, None
    )
    assert decision.action is Action.FAIL and decision.alarm == "b"
    assert "new 40, old 400" in decision.message


def test_lacking_data_extends_in_steps_then_pauses_saying_why() -> None:
    lacking = [verdict(Outcome.LACKS_DATA)]
    extended, steps = 0, []
    while True:
        decision = decide_bake(lacking, 300, extended, None)
        if decision.action is not Action.EXTEND:
            break
        steps.append(decision.seconds)
        extended += decision.seconds
    assert steps == [75, 75, 75, 75]
    assert decision.action is Action.PAUSE
    assert "too little data" in decision.message and "new 40, old 400" in decision.message
    assert "already extended by 300 s" in decision.message


def test_the_deadline_bounds_the_extension() -> None:
    lacking = [verdict(Outcome.LACKS_DATA)]
    near = decide_bake(lacking, 300, 0, DEADLINE_MARGIN_SECONDS + 20)
    assert near.action is Action.EXTEND and near.seconds == 20
    spent = decide_bake(lacking, 300, 20, DEADLINE_MARGIN_SECONDS)
    assert spent.action is Action.PAUSE and "deadline" in spent.message


def test_after_a_resume_or_promote_lacking_data_goes_on_with_a_word() -> None:
    decision = decide_bake([verdict(Outcome.LACKS_DATA)], 300, 0, None, can_extend=False)
    assert decision.action is Action.PASS
    assert "without a verdict" in decision.message


def test_a_zero_second_bake_still_gets_a_minute() -> None:
    assert max_extension(0) == MIN_EXTENSION_SECONDS
    assert max_extension(10 * 3600) == MAX_EXTENSION_SECONDS
    assert extension_step(0) == 15


outcomes = st.lists(st.sampled_from(list(Outcome)), max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    kinds=outcomes,
    bake=st.integers(0, 28_800),
    deadline=st.one_of(st.none(), st.floats(-100, 40_000)),
)
def test_extensions_are_bounded_and_end_in_pass_pause_or_fail(
    kinds: list[Outcome], bake: int, deadline: float | None
) -> None:
    verdicts = [verdict(k, f"j{i}") for i, k in enumerate(kinds)]
    extended = 0
    left = deadline
    for _ in range(1000):
        decision = decide_bake(verdicts, bake, extended, left)
        if decision.action is not Action.EXTEND:
            break
        assert 0 < decision.seconds <= extension_step(bake)
        extended += decision.seconds
        if left is not None:
            left -= decision.seconds
            assert left >= DEADLINE_MARGIN_SECONDS  # never extended into the margin
    else:
        raise AssertionError("the bake extended forever")
    assert extended <= max_extension(bake)
    if Outcome.FAIL in kinds:
        assert decision.action is Action.FAIL and extended == 0
    elif Outcome.LACKS_DATA in kinds:
        assert decision.action is Action.PAUSE
    else:
        assert decision.action is Action.PASS and extended == 0
