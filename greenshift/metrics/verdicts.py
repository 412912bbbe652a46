"""What a bake does with the built-in judge's verdicts: pass, extend, pause or fail. Pure.

A judge alarm (ERROR_JUDGE / LATENCY_JUDGE, greenshift.metrics.judge) that lacks data is
INSUFFICIENT_DATA, or OK under `TreatMissingData: notBreaching`: neither rolls back, so left to
the alarm a quiet canary would pass its bake without ever being judged. At the end of every bake
the deployment therefore asks for each judge's verdict (`JUDGE_BAKE`), and
`decide_bake` turns the verdicts into what happens next:

- any verdict FAIL → roll back, as the alarm would (it may not have tripped yet);
- every verdict PASS (or no judge among the bake's alarms) → the bake passes;
- some verdict LACKS_DATA → the bake extends by `extension_step` at a time, up to
  `max_extension` in all and never into the last `DEADLINE_MARGIN_SECONDS` before
  MaximumExecutionTimeoutInSeconds; once that budget is spent → the deployment pauses and says
  which judge lacks what. It never loops: a resume judges once more, and if data still lacks
  the user's resume is the decision and the deployment goes on.

This module is also the typed contract of the judging activity (its input, its result), so the
workflows may import it: standard library and pydantic only.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

# The bake extends by its own length at most, at least MIN_EXTENSION_SECONDS (a final bake of
# 0 s still gets a minute to collect data) and at most MAX_EXTENSION_SECONDS, in
# EXTENSION_STEPS equal steps of at least MIN_STEP_SECONDS.
MIN_EXTENSION_SECONDS = 60
MAX_EXTENSION_SECONDS = 3600
EXTENSION_STEPS = 4
MIN_STEP_SECONDS = 15
# An extension ends at least this long before the deadline: pausing with the reason beats a
# deadline rollback that only says "did not finish".
DEADLINE_MARGIN_SECONDS = 60

# Event types of the deployment's log (greenshift events, describe, webhooks).
VERDICT_EVENT = "JudgeVerdict"
EXTENDED_EVENT = "BakeExtended"


class Outcome(StrEnum):
    PASS = "Pass"
    FAIL = "Fail"
    LACKS_DATA = "LacksData"


class Verdict(BaseModel):
    """One judge alarm's verdict over a bake, with the figures it rests on."""

    model_config = ConfigDict(extra="forbid")

    alarm: str
    judge: str  # ERROR_JUDGE | LATENCY_JUDGE
    outcome: Outcome
    z: float | None = None  # None: not enough data for a verdict
    threshold: float
    new_requests: float
    old_requests: float
    # Error rates (ERROR_JUDGE) or median latencies in microseconds (LATENCY_JUDGE).
    new_value: float | None = None
    old_value: float | None = None
    min_requests: float
    message: str  # the verdict in words, with its figures

    def detail(self) -> dict[str, Any]:
        """The event's Detail (PascalCase, as the rest of the event)."""
        return {
            "AlarmName": self.alarm,
            "Judge": self.judge,
            "Verdict": self.outcome.value,
            "Z": self.z,
            "Threshold": self.threshold,
            "NewRequests": self.new_requests,
            "OldRequests": self.old_requests,
            "NewValue": self.new_value,
            "OldValue": self.old_value,
            "MinRequests": self.min_requests,
        }


class JudgeInput(BaseModel):
    """Judge the judge alarms among `alarms` over the deployment so far (from the alarm's range
    before `since`, the deployment's start, up to now), and record each verdict as an event."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str
    deployment_id: str
    alarms: list[str]
    since: datetime
    step_index: int  # the bake's plan step, and which look at it: the events' idempotency keys
    look: int
    at: datetime  # the workflow's time, for the events


class JudgeResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verdicts: list[Verdict] = Field(default_factory=list)


class JudgeSource(Protocol):
    def verdicts(self, request: JudgeInput, now: datetime) -> list[Verdict]:
        """The verdicts of the judge alarms among `request.alarms` (others are left out) over
        [request.since - the alarm's range, now]. Blocking."""

    def judge_alarms(self, names: list[str]) -> list[str]:
        """Which of `names` are judge alarms (the alarm check asks, so a bake whose alarms hold
        no judge skips the judging activity). Blocking."""


class Action(StrEnum):
    PASS = "Pass"
    EXTEND = "Extend"
    PAUSE = "Pause"
    FAIL = "Fail"


class BakeDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: Action
    seconds: int = 0  # how long to extend (EXTEND)
    message: str = ""
    alarm: str | None = None  # the failing judge (FAIL)


def max_extension(bake_seconds: int) -> int:
    """How much longer than planned a bake may run while its judges lack data."""
    return min(max(bake_seconds, MIN_EXTENSION_SECONDS), MAX_EXTENSION_SECONDS)


def extension_step(bake_seconds: int) -> int:
    return max(-(-max_extension(bake_seconds) // EXTENSION_STEPS), MIN_STEP_SECONDS)


def decide_bake(
    verdicts: list[Verdict],
    bake_seconds: int,
    extended_seconds: int,
    deadline_left_seconds: float | None,
    can_extend: bool = True,
) -> BakeDecision:
    """What the bake does next, given its judges' verdicts, how long it was planned for, how
    much it was extended already, and the time left before the deadline (None: no deadline).
    `can_extend` is False after a promote or a resume: the user said go on."""
    failed = next((v for v in verdicts if v.outcome is Outcome.FAIL), None)
    if failed is not None:
        return BakeDecision(action=Action.FAIL, message=failed.message, alarm=failed.alarm)
    lacking = [v for v in verdicts if v.outcome is Outcome.LACKS_DATA]
    if not lacking:
        return BakeDecision(action=Action.PASS)
    left = max_extension(bake_seconds) - extended_seconds
    if deadline_left_seconds is not None:
        left = min(left, int(deadline_left_seconds - DEADLINE_MARGIN_SECONDS))
    seconds = min(extension_step(bake_seconds), left)
    what = "; ".join(v.message for v in lacking)
    if can_extend and seconds > 0:
        return BakeDecision(
            action=Action.EXTEND,
            seconds=seconds,
            message=f"The bake is extended by {seconds} s ({extended_seconds + seconds} s of at "
            f"most {max_extension(bake_seconds)} s so far): too little data for "
            f"{', '.join(v.alarm for v in lacking)} to judge.",
        )
    if not can_extend:
        return BakeDecision(action=Action.PASS, message=f"Going on without a verdict: {what}.")
    why = (
        "the deadline (MaximumExecutionTimeoutInSeconds) is near"
        if left < max_extension(bake_seconds) - extended_seconds
        else f"the bake was already extended by {extended_seconds} s, its maximum"
    )
    return BakeDecision(
        action=Action.PAUSE,
        message=f"Paused: the judge has too little data to tell whether the new fleet is worse "
        f"({what}), and {why}. Traffic is held where it is; send traffic and resume to judge "
        "again (a resume without data goes on), or abort.",
    )
