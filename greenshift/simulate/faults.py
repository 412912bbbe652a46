"""Scripted faults of a rehearsal, parsed from short specs. Pure.

    alarm:bake=2,at=420[,name=HighErrors]   the alarm goes to ALARM 420 s into the 2nd bake
    start-fails:batch=7                     the 7th launch (provision step) fails its /ping
    deadline:step=5                         the deployment is held (paused) from step 5 on, so
                                            MaximumExecutionTimeoutInSeconds expires
    quiet:bake=2[,looks=3]                  the built-in judges lack data in the 2nd bake, for
                                            its first 3 looks (default: every look)

`batch` and `provision` are the same key: the n-th provision step, counting from 1, of the
forward plan (a rolling update has one per batch; blue/green has one).
"""

from __future__ import annotations

from dataclasses import dataclass


class FaultError(ValueError):
    """A fault spec that cannot be read; the message says which and why."""


@dataclass(frozen=True)
class AlarmFault:
    """The alarm goes to ALARM `at` seconds into bake number `bake` (from 1) and stays there."""

    bake: int
    at: float
    name: str | None = None  # None: the first alarm the request watches


@dataclass(frozen=True)
class StartFault:
    """The instances of the n-th provision step (from 1) never pass /ping."""

    provision: int


@dataclass(frozen=True)
class DeadlineFault:
    """The deployment is paused when it reaches step `step` (from 1) and never resumed: only the
    request's MaximumExecutionTimeoutInSeconds ends it."""

    step: int


@dataclass(frozen=True)
class QuietFault:
    """Too little traffic to judge: in bake number `bake` (from 1) the judges lack data for
    the first `looks` looks at it (None: every look, so the deployment pauses)."""

    bake: int
    looks: int | None = None


Fault = AlarmFault | StartFault | DeadlineFault | QuietFault

USAGE = (
    "faults are alarm:bake=N,at=SECONDS[,name=ALARM] | start-fails:batch=N | deadline:step=N"
    " | quiet:bake=N[,looks=K]"
)


def parse_fault(spec: str) -> Fault:
    kind, _, rest = spec.strip().partition(":")
    fields: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not value:
            raise FaultError(f"fault {spec!r}: {part!r} is not key=value; {USAGE}")
        fields[key.strip()] = value.strip()
    try:
        if kind == "alarm":
            alarm = AlarmFault(
                bake=_positive(fields.pop("bake")),
                at=float(fields.pop("at")),
                name=fields.pop("name", None),
            )
            if not 0 <= alarm.at < float("inf"):
                raise FaultError(f"fault {spec!r}: at must be a finite number of seconds from 0")
            fault: Fault = alarm
        elif kind == "start-fails":
            key = "batch" if "batch" in fields else "provision"
            fault = StartFault(provision=_positive(fields.pop(key)))
        elif kind == "deadline":
            fault = DeadlineFault(step=_positive(fields.pop("step")))
        elif kind == "quiet":
            looks = fields.pop("looks", None)
            fault = QuietFault(
                bake=_positive(fields.pop("bake")),
                looks=None if looks is None else _positive(looks),
            )
        else:
            raise FaultError(f"fault {spec!r}: unknown kind {kind!r}; {USAGE}")
    except KeyError as missing:
        raise FaultError(f"fault {spec!r}: {missing.args[0]} is missing; {USAGE}") from None
    except ValueError as error:
        if isinstance(error, FaultError):
            raise
        raise FaultError(f"fault {spec!r}: {error}; {USAGE}") from None
    if fields:
        raise FaultError(f"fault {spec!r}: unknown key(s) {', '.join(sorted(fields))}; {USAGE}")
    return fault


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"{value} is not a number from 1")
    return number
