"""Chaos suite: deployments of every strategy under steady traffic while one component is
SIGKILLed at a random moment; after each, the invariants of tests/harness/chaos/invariants.py.

    PYTHONPATH=. .venv/bin/python bench/chaos.py --trials 14 --seed 1 --json chaos.json

One `greenshift up` stack in a throwaway home on free ports of 127.0.0.1; traffic only to it.
Trials pair strategies and components round-robin (each list shuffled by the seed), so N trials
cover every component about N / 7 times. The run stops starting trials after --budget seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from greenshift.registry.sql import SqlRegistry  # noqa: E402
from tests.e2e.stack import processes_mentioning, running_stack  # noqa: E402
from tests.harness.chaos.killers import COMPONENTS  # noqa: E402
from tests.harness.chaos.trial import STRATEGIES, ChaosRig, TrialResult  # noqa: E402


def schedule(
    trials: int, strategies: list[str], components: list[str], seed: int
) -> list[tuple[str, str]]:
    """(strategy, component) per trial: every component before any repeats, strategies cycled."""
    rng = random.Random(seed)
    comps: list[str] = []
    while len(comps) < trials:
        batch = list(components)
        rng.shuffle(batch)
        comps += batch
    strats = list(strategies)
    rng.shuffle(strats)
    return [(strats[i % len(strats)], comps[i]) for i in range(trials)]


def summary(results: list[TrialResult]) -> dict[str, Any]:
    return {
        "trials": len(results),
        "passed": sum(r.ok for r in results),
        "kills_per_component": dict(Counter(r.component for r in results)),
        "trials_per_strategy": dict(Counter(r.strategy for r in results)),
        "outcomes": dict(Counter(r.outcome for r in results)),
        "requests": sum(r.sent for r in results),
        "failed_requests": sum(r.failed for r in results),
        "model_errors": sum(r.model_errors for r in results),
        "connection_retries": sum(r.retries for r in results),
        "stuck_deployments": sum(r.outcome == "stuck" for r in results),
        "unexpected_outcomes": sum(r.outcome != r.expected for r in results),
        "trials_with_violations": sum(bool(r.violations) for r in results),
        "orphans": sum(
            1 for r in results for v in r.violations if "orphaned" in v or "no process" in v
        ),
    }


def print_report(results: list[TrialResult], totals: dict[str, Any]) -> None:
    print(
        f"\n{'#':>3} {'strategy':<11} {'killed':<13} {'at s':>5} {'phase at kill':<28} "
        f"{'outcome':<12} {'sent':>5} {'retry':>5} {'fail':>4}  ok"
    )
    for r in results:
        print(
            f"{r.index:>3} {r.strategy:<11} {r.component:<13} {r.kill_at:>5.1f} "
            f"{r.phase_at_kill[:28]:<28} {r.outcome:<12} {r.sent:>5} {r.retries:>5} "
            f"{r.failed:>4}  {'yes' if r.ok else 'NO'}"
        )
        for line in r.failures + r.violations:
            print(f"      ! {line}")
    print()
    for key, value in totals.items():
        print(f"{key:>24}: {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=14)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--components", default=",".join(COMPONENTS))
    parser.add_argument("--rate", type=float, default=20.0, help="requests/s during each trial")
    parser.add_argument("--budget", type=float, default=840.0, help="start no trial after this")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    plan = schedule(args.trials, args.strategies.split(","), args.components.split(","), args.seed)
    rng = random.Random(args.seed)
    results: list[TrialResult] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="greenshift-chaos-") as tmp:
        home = Path(tmp) / "home"
        with running_stack(home) as stack:
            settings = stack.settings
            registry = SqlRegistry(settings.registry_url, arn_for=settings.arn)
            rig = ChaosRig(
                settings,
                stack.client("sagemaker"),
                stack.client("cloudwatch"),
                registry,
                str(ROOT / "examples" / "models"),
                rate=args.rate,
            )
            rig.setup()
            for index, (strategy, component) in enumerate(plan, 1):
                if time.monotonic() - started > args.budget:
                    print(f"budget of {args.budget:.0f}s spent: {index - 1} trials run")
                    break
                result = rig.trial(index, strategy, component, rng)
                results.append(result)
                print(
                    f"trial {index}: {strategy} kill {component} at {result.kill_at}s "
                    f"-> {result.outcome}, {result.failed} failed, "
                    f"{len(result.violations)} violations ({result.seconds}s)",
                    flush=True,
                )
                for line in result.failures + result.violations:
                    print(f"  ! {line}", flush=True)
        leftovers = processes_mentioning(str(home))
    totals = summary(results)
    totals["leftover_processes_after_stop"] = len(leftovers)
    totals["seconds"] = round(time.monotonic() - started, 1)
    print_report(results, totals)
    if args.json:
        args.json.write_text(
            json.dumps({"summary": totals, "trials": [r.as_dict() for r in results]}, indent=2)
        )
    return 0 if all(r.ok for r in results) and not leftovers else 1


if __name__ == "__main__":
    sys.exit(main())
