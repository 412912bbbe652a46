"""Load suite: 10 endpoints, 30 instances in all, each under steady traffic, updated concurrently
with mixed strategies (ALL_AT_ONCE, CANARY, LINEAR, ROLLING); then 100 UpdateEndpoint calls racing
on one endpoint (exactly one wins, the rest get the in-progress error).

    PYTHONPATH=. .venv/bin/python bench/load.py [--endpoints 10] [--instances 3] [--rate 20]
        [--racers 100] [--timeout 360] [--write]

Bounded: creation, the deployments and the race each have a timeout (about 8 minutes in all).
Traffic goes only to the stack on 127.0.0.1. Exits 1 on a failed request, a deployment that did
not end InService on the new config, or a race without exactly one winner.
`--write` puts the figures under "## Load" in docs/benchmarks.md (only that section).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report_doc import replace_section  # noqa: E402
from tests.e2e.stack import processes_mentioning, running_stack  # noqa: E402
from tests.load.scenario import LoadResult, prepare, race, update_concurrently  # noqa: E402


def report(result: LoadResult, args: argparse.Namespace, created_in: float) -> list[str]:
    target = args.rate * args.endpoints
    latencies = sorted(a.latency for r in result.traffic.values() for a in r.answers)
    p = (
        (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000)
        if latencies
        else (lambda q: 0.0)
    )
    lines = [
        f"`PYTHONPATH=. .venv/bin/python bench/load.py --endpoints {args.endpoints} --instances "
        f"{args.instances} --rate {args.rate:g} --racers {args.racers}` on "
        f"{datetime.now(UTC):%Y-%m-%d} (2 cores, shared with the team's test runs): the whole "
        f"stack (`greenshift up`) on 127.0.0.1, {args.endpoints} endpoints x {args.instances} "
        f"instances = {args.endpoints * args.instances} instances (peak "
        f"{2 * args.endpoints * args.instances} while blue/green fleets overlap; the default "
        "max_instances 64 allows it), created in "
        f"{created_in:.0f} s. Each endpoint gets {args.rate:g} req/s (open loop, `SteadyLoad`) "
        "while all are updated to a new config at once, strategies in turn ALL_AT_ONCE, CANARY, "
        "LINEAR, ROLLING (one-instance steps, 4 s bakes).",
        "",
        f"- Traffic: {result.sent} requests in {result.traffic_seconds:.0f} s = "
        f"{result.throughput:.1f} req/s held (target {target:g}); **failed: {result.failed}**; "
        f"latency p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {p(1.0):.0f} ms.",
        f"- Every endpoint answered from both fleets during its deployment: "
        f"{all({'v1', 'v2'} <= set(r.by_version()) for r in result.traffic.values())}.",
        f"- Deployments: {sum(d.outcome == 'InService' for d in result.deployments)}/"
        f"{len(result.deployments)} ended InService on the new config.",
        "",
        "| endpoint | strategy | outcome | seconds |",
        "| --- | --- | --- | ---: |",
    ]
    for d in result.deployments:
        seconds = f"{d.seconds:.1f}" if d.seconds is not None else "-"
        reason = f" ({d.failure_reason})" if d.failure_reason else ""
        lines.append(f"| {d.endpoint} | {d.strategy} | {d.outcome}{reason} | {seconds} |")
    by_strategy: dict[str, list[float]] = {}
    for d in result.deployments:
        if d.seconds is not None:
            by_strategy.setdefault(d.strategy, []).append(d.seconds)
    lines += [
        "",
        "Median duration by strategy: "
        + ", ".join(f"{k} {statistics.median(v):.1f} s" for k, v in sorted(by_strategy.items()))
        + ".",
        "",
        f"- Race: {args.racers} UpdateEndpoint calls on one endpoint at once (threads, boto3, one "
        f"attempt each) took {result.race_seconds:.1f} s: **{result.race_winners} won**; the rest: "
        + "; ".join(f"{n} x `{msg}`" for msg, n in result.race_errors.items())
        + ".",
    ]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--rate", type=float, default=20.0, help="req/s per endpoint")
    parser.add_argument("--racers", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=300, help="bound on the deployments")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    names = [f"load-{i}" for i in range(args.endpoints)]
    peak = 2 * args.endpoints * args.instances
    extra = {"GREENSHIFT_MAX_INSTANCES": str(max(64, peak))}
    with tempfile.TemporaryDirectory(prefix="gs-load-") as home:
        with running_stack(Path(home), extra_env=extra) as stack:
            begun = time.monotonic()
            prepare(stack, names, args.instances, timeout=240)
            created_in = time.monotonic() - begun
            print(f"{len(names)} endpoints InService in {created_in:.0f} s", flush=True)
            result = update_concurrently(stack, names, args.rate, timeout=args.timeout)
            race(stack, names[0], args.racers, "load-v1", result)
        leftovers = processes_mentioning(str(Path(home).resolve()))
    lines = report(result, args, created_in)
    if leftovers:
        lines.append(f"\nLEFTOVER PROCESSES after the stack stopped: {leftovers}")
    print("\n".join(lines))
    if args.write:
        replace_section("Load", "\n".join(lines))
    ok = (
        result.failed == 0
        and all(d.outcome == "InService" for d in result.deployments)
        and all({"v1", "v2"} <= set(r.by_version()) for r in result.traffic.values())
        and result.race_winners == 1
        and set(result.race_errors) == {f"ValidationException: {result.race_expected_message}"}
        and not leftovers
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
