"""What a running stack costs while nothing happens, and while a deployment bakes: the CPU of
every process `greenshift up` runs (Temporal, the API, the data plane, metrics and alarms, the
worker, the supervisor itself, the model instances), so "a stack on a laptop stays quiet while it
bakes" (issue 17) is a figure.

    PYTHONPATH=. .venv/bin/python bench/idle_bench.py [--seconds 30]

The whole stack on free ports of 127.0.0.1 in a throwaway home, an endpoint on echo-v1 (2
instances), no traffic. Two windows of `--seconds` each:
1. idle: the endpoint InService, nothing else;
2. baking: a CANARY UpdateEndpoint to echo-v2 (1 instance first, WaitIntervalInSeconds 3600)
   sits in its first bake, with no alarm.
Each process's CPU (utime + stime from /proc, children it waited for included) over a window, as
a share of one core, grouped by component. The stack is stopped at the end, the bake with it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import create_config, create_model  # noqa: E402
from tests.e2e.stack import Stack, processes_mentioning, running_stack  # noqa: E402
from tests.workflow.harness import canary  # noqa: E402

ENDPOINT = "quiet"
TICKS = 100  # os.sysconf("SC_CLK_TCK") on Linux

# A process's component, by what its command line runs (first match wins).
COMPONENTS = (
    ("temporal", "server start-dev"),
    ("dataplane (haproxy)", "haproxy"),
    ("dataplane", "greenshift.dataplane"),
    ("api", "greenshift.api"),
    ("metrics", "greenshift.metrics"),
    ("worker", "worker"),
    ("model instances", "model_server"),
    ("model instances", "greenshift.fleet"),
    ("supervisor (greenshift up)", "greenshift up"),
)


def component_of(cmdline: str) -> str:
    for name, marker in COMPONENTS:
        if marker in cmdline:
            return name
    return "other: " + cmdline[:60]


def cpu_seconds(pid: int) -> tuple[str, float] | None:
    """(component, utime + stime + waited-for children's) of a live process, else None."""
    proc = Path("/proc") / str(pid)
    try:
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        stat = (proc / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return component_of(cmdline), (utime + stime + cutime + cstime) / TICKS


def snapshot(stack: Stack) -> dict[int, tuple[str, float]]:
    found = {}
    for pid in processes_mentioning(str(stack.settings.home_dir)):
        seen = cpu_seconds(pid)
        if seen is not None:
            found[pid] = seen
    return found


def window(stack: Stack, seconds: float) -> dict[str, float]:
    """CPU per component over `seconds`, as a share of one core (processes alive throughout)."""
    before = snapshot(stack)
    time.sleep(seconds)
    after = snapshot(stack)
    shares: dict[str, float] = defaultdict(float)
    for pid, (name, spent) in after.items():
        if pid in before:
            shares[name] += (spent - before[pid][1]) / seconds
    return dict(shares)


def wait_for_bake(stack: Stack, limit: float) -> None:
    sm = stack.client("sagemaker")
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        pending = sm.describe_endpoint(EndpointName=ENDPOINT).get("PendingDeploymentSummary")
        for variant in (pending or {}).get("ProductionVariants", []):
            if any(s["Status"] == "Baking" for s in variant.get("VariantStatus", [])):
                return
        time.sleep(0.5)
    raise TimeoutError(f"{ENDPOINT} did not start baking within {limit:.0f} s")


def run(seconds: float) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as home, running_stack(Path(home)) as stack:
        sm = stack.client("sagemaker")
        for name in ("echo-v1", "echo-v2"):
            create_model(sm, name, name)
            create_config(sm, name, name, count=2)
        sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="echo-v1")
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName=ENDPOINT, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
        time.sleep(5)  # the first scrapes and evaluations after the create
        idle = window(stack, seconds)
        sm.update_endpoint(
            EndpointName=ENDPOINT,
            EndpointConfigName="echo-v2",
            DeploymentConfig=canary(wait=3600, size=1, final=0),
        )
        wait_for_bake(stack, 120)
        time.sleep(2)
        baking = window(stack, seconds)
        return {"idle": idle, "baking": baking}


def report(figures: dict[str, dict[str, float]], seconds: float) -> str:
    names = sorted(set(figures["idle"]) | set(figures["baking"]))
    rows = [
        f"| component | idle, % of one core | baking, % of one core ({seconds:.0f} s each) |",
        "| --- | ---: | ---: |",
    ]
    for name in names:
        idle, baking = figures["idle"].get(name, 0.0), figures["baking"].get(name, 0.0)
        rows.append(f"| {name} | {idle * 100:.2f} | {baking * 100:.2f} |")
    total_idle, total_baking = sum(figures["idle"].values()), sum(figures["baking"].values())
    rows.append(f"| **all** | **{total_idle * 100:.2f}** | **{total_baking * 100:.2f}** |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each window")
    args = parser.parse_args()
    figures = run(args.seconds)
    print(report(figures, args.seconds))


if __name__ == "__main__":
    main()
