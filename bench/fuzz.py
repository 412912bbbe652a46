"""Fuzz suite: random valid-ish and malformed requests against a real stack (127.0.0.1 only).

    PYTHONPATH=. .venv/bin/python bench/fuzz.py [--cases 2000] [--seconds 300] [--seed 1] [--write]

Three passes, each bounded by --cases and a third of --seconds (plus ~20 s to start its stack):
1. the control API without access keys (every SageMaker, Greenshift.* and CloudWatch operation);
2. the control API of a stack started with GREENSHIFT_ACCESS_KEYS (most cases signed, the rest
   with a missing or broken SigV4 signature);
3. the runtime: paths, methods, headers, bodies up to and past 6 MB, chunked bodies.
Fails (exit 1) on any finding: a Greenshift 5xx, no answer, a rejected request that changed the
registry, a runtime 5xx other than 503 ServiceUnavailable, or an endpoint that stopped serving.
`--write` puts the figures under "## Fuzz" in docs/benchmarks.md (only that section).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report_doc import replace_section  # noqa: E402
from tests.e2e.stack import Stack, running_stack  # noqa: E402
from tests.harness.fuzzing import fixtures  # noqa: E402
from tests.harness.fuzzing.control import Keys  # noqa: E402
from tests.harness.fuzzing.runner import (  # noqa: E402
    ControlApi,
    Finding,
    FuzzReport,
    fuzz_control,
    fuzz_runtime,
    invoke_ok,
)

KEYS = Keys("fuzzkey", "fuzzsecret")
FOUND = [
    "Found by this suite and fixed, each with a regression test:",
    "",
    "- a JSON body nested a few thousand levels deep made the control API answer 500",
    "  InternalFailure (SageMaker and Greenshift targets) and 500 InternalServiceFault",
    "  (CloudWatch): the decoder's RecursionError was not caught; now SerializationException 400",
    "  (greenshift/api/app.py, greenshift/metrics/cloudwatch_api.py);",
    "- a chunked request body reached the model unchecked past 6 MB (HAProxy streams it without",
    "  knowing its size); the runtime now refuses a body without Content-Length with 411",
    "  ValidationError (greenshift/dataplane/config.py). boto3 and the AWS CLI always send",
    "  Content-Length. Exactly 6,291,456 bytes is served, one byte more is 413 ValidationError.",
    "- an epoch timestamp outside datetime's range (`CreationTimeAfter: 1e30`,",
    "  `EndTime: 1e308`) made ListModels, ListEndpoints, DescribeAlarmHistory and GetMetricData",
    "  answer 500: datetime.fromtimestamp's OverflowError/OSError escaped validation; now",
    "  SerializationException 400 (greenshift/contracts/base.py);",
    "- along the way, not by a request: `greenshift up` whose stdout reader had gone (a killed",
    '  bench, a closed terminal) raised BrokenPipeError printing "Stopping" and left every',
    "  component and model instance running; it now stops them all (greenshift/cli/stack.py).",
]


def _prepare(stack: Stack) -> None:
    fixtures.create(
        stack.client("sagemaker"),
        stack.client("cloudwatch"),
        ROOT / "examples" / "models" / "echo-v1",
    )


def control_pass(cases: int, seconds: float, seed: int, signed: bool) -> FuzzReport:
    report = FuzzReport()
    extra = {"GREENSHIFT_ACCESS_KEYS": f"test:test,{KEYS.access_key}:{KEYS.secret}"}
    with tempfile.TemporaryDirectory(prefix="gs-fuzz-") as home:
        with running_stack(Path(home), extra_env=extra if signed else None) as stack:
            _prepare(stack)
            s = stack.settings
            api = ControlApi(s.host, s.api_port, KEYS if signed else None)
            fuzz_control(
                api, cases, seconds, seed, fixtures.NAMES, report, KEYS if signed else None
            )
            if not invoke_ok(s.host, s.runtime_port, fixtures.ENDPOINT):
                report.findings.append(_gone("the fixture endpoint stopped serving"))
            report.findings += _crashes(stack)
    return report


def runtime_pass(cases: int, seconds: float, seed: int) -> FuzzReport:
    report = FuzzReport()
    with tempfile.TemporaryDirectory(prefix="gs-fuzz-") as home:
        with running_stack(Path(home)) as stack:
            _prepare(stack)
            s = stack.settings
            fuzz_runtime(s.host, s.runtime_port, fixtures.ENDPOINT, cases, seconds, seed, report)
            if not invoke_ok(s.host, s.runtime_port, fixtures.ENDPOINT):
                report.findings.append(_gone("the endpoint stopped serving after the fuzz"))
            report.findings += _crashes(stack)
    return report


def _crashes(stack: Stack) -> list[Finding]:
    """A component the supervisor had to restart: a crash, even if the stack recovered."""
    return [_gone(line.strip()) for line in stack.output if "exited (code" in line]


def _gone(problem: str) -> Finding:
    return Finding("runtime", "after", problem, "")


def summary(name: str, report: FuzzReport, seconds: float) -> list[str]:
    lines = [
        f"### {name}: {report.total} cases in {seconds:.0f} s, {len(report.findings)} findings",
        "",
        f"Answers by status: {dict(sorted(report.statuses.items()))} (0 = no status line: the "
        "server closed on a request it could not parse)."
        + (f" Accepted (2xx, state settled after): {report.accepted}." if report.accepted else ""),
        "",
        "| target | cases |",
        "| --- | ---: |",
    ]
    lines += [f"| {t} | {n} |" for t, n in sorted(report.cases.items())]
    for f in report.findings[:20]:
        lines.append(f"\nFINDING {f.target} {f.label}: {f.problem}\n    {f.request[:400]!r}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1500, help="cases per pass")
    parser.add_argument(
        "--seconds", type=float, default=600, help="fuzzing time in all, split over the 3 passes"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    out = [
        f"`PYTHONPATH=. .venv/bin/python bench/fuzz.py --cases {args.cases} --seconds "
        f"{args.seconds:.0f} --seed {args.seed}` on {datetime.now(UTC):%Y-%m-%d} (2 cores, shared "
        "with the team's test runs). Raw HTTP to a real stack on 127.0.0.1; findings are "
        "Greenshift 5xx, no answer, a rejected request that changed the registry, or a runtime "
        "that stopped serving.",
        "",
    ]
    failed = 0
    each = args.seconds / 3  # the stacks' start and fixtures come on top (~20 s a pass)
    for name, run in (
        ("control API", lambda: control_pass(args.cases, each, args.seed, False)),
        (
            "control API with SigV4 keys",
            lambda: control_pass(args.cases, each, args.seed + 1, True),
        ),
        ("runtime", lambda: runtime_pass(args.cases, each, args.seed + 2)),
    ):
        begun = time.monotonic()
        report = run()
        lines = summary(name, report, time.monotonic() - begun)
        print("\n".join(lines), flush=True)
        out += [*lines, ""]
        failed += len(report.findings)
    if args.write:
        replace_section("Fuzz", "\n".join([*out, *FOUND]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
