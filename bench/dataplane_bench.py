"""Data-plane benchmark: the same load tool (wrk) against three targets on this machine.

1. one model instance directly (POST /invocations);
2. a bare HAProxy with a static config in front of the same instances (roundrobin, keep-alive);
3. Greenshift's data plane (router controller + registry + access-log metrics collector) in
   front of the same instances (POST /endpoints/Bench/invocations); also without the access log,
   to show what per-request logging costs.

It prints throughput and p50/p99 at full load (closed loop, `--connections`), then p50/p99 at
half of the bare HAProxy's throughput (paced with wrk's `delay()` hook), and the ratios. Targets
(issue 4): Greenshift >= 90 % of bare HAProxy throughput; p99 added by Greenshift's routing
<= 1 ms at half load. Needs `wrk` on PATH (`apt-get install wrk`); not part of the test run.

    .venv/bin/python bench/dataplane_bench.py [--seconds 8] [--connections 32] [--instances 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from greenshift import binaries  # noqa: E402
from greenshift.dataplane.controller import RouterController  # noqa: E402
from greenshift.dataplane.haproxy import HAProxyProcess  # noqa: E402
from greenshift.dataplane.main import FleetConfigs  # noqa: E402
from greenshift.metrics.collector import MetricsCollector  # noqa: E402
from greenshift.metrics.model import Datapoint  # noqa: E402
from greenshift.registry.records import (  # noqa: E402
    EndpointRouting,
    FleetRoute,
    InstanceRecord,
    VariantRoute,
)
from greenshift.registry.sql import SqlRegistry  # noqa: E402
from greenshift.settings import Settings  # noqa: E402

BODY = '{"features": [1, 2, 3, 4]}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ok(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(url)


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_req: float = 0.0  # CPU time of the measured process(es) per request


def median_run(runs: list[Run]) -> Run:
    """The run with the median throughput (a busy shared box makes single runs noisy)."""
    return sorted(runs, key=lambda r: r.rps)[len(runs) // 2]


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes (all threads), from /proc."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(
    url: str, seconds: int, connections: int, delay_ms: float, tmp: Path, pids: list[int]
) -> Run:
    script = tmp / f"wrk-{connections}-{delay_ms:.3f}.lua"
    lua = (
        'wrk.method = "POST"\n'
        f"wrk.body = '{BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    if delay_ms > 0:
        lua += f"function delay() return {delay_ms:.3f} end\n"
    script.write_text(lua)
    cpu_before = cpu_seconds(pids)
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    cpu = cpu_seconds(pids) - cpu_before
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in out or "Socket errors" in out:
        print(f"  warning: errors in run against {url}:\n{out}")
    return Run(rps, p50, p99, cpu * 1e6 / max(1, done))


class NullSink:
    def __init__(self) -> None:
        self.points = 0

    def put(self, points: list[Datapoint]) -> None:
        self.points += len(points)


def bare_haproxy_config(port: int, instances: list[int], admin: Path) -> str:
    servers = "\n".join(
        f"  server s{i} 127.0.0.1:{p} pool-max-conn -1" for i, p in enumerate(instances)
    )
    return f"""global
  stats socket {admin} mode 600 level admin expose-fd listeners
  maxconn 4096
defaults
  mode http
  timeout connect 3s
  timeout client 70s
  timeout server 65s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:{port}
  default_backend be
backend be
  balance leastconn
{servers}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")

    procs: list[subprocess.Popen[bytes]] = []
    tmp = Path(tempfile.mkdtemp(prefix="gs-dataplane-bench-"))
    stop = threading.Event()
    hp: HAProxyProcess | None = None
    try:
        ports = []
        for _ in range(args.instances):
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "greenshift.fleet.model_server",
                        "--model-dir",
                        str(REPO / "examples/models/echo-v1"),
                        "--port",
                        str(port),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            ports.append(port)
        for port in ports:
            wait_ok(f"http://127.0.0.1:{port}/ping")

        # Bare HAProxy, static config.
        bare_port = free_port()
        bare_cfg = tmp / "bare.cfg"
        bare_cfg.write_text(bare_haproxy_config(bare_port, ports, tmp / "bare.sock"))
        procs.append(
            subprocess.Popen(
                [binaries.haproxy(), "-f", str(bare_cfg)],  # one process: its CPU is measured
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

        bare_pid = procs[-1].pid
        ports_pids = [p.pid for p in procs[: len(ports)]]

        # Greenshift's data plane: registry, controller, access log into the collector.
        settings = Settings(
            home=tmp / "home",
            runtime_port=free_port(),
            stats_port=free_port(),
            database_url=f"sqlite:///{tmp / 'registry.db'}",
        )
        gs_nolog_port = free_port()
        nolog_settings = settings.model_copy(
            update={"runtime_port": gs_nolog_port, "stats_port": free_port()}
        )
        registry = SqlRegistry(settings.registry_url)
        now = datetime.now(UTC)
        for i, port in enumerate(ports):
            registry.upsert_instance(
                InstanceRecord(
                    instance_id=f"Bench.A.fleet.{i}",
                    fleet_id="Bench.A.fleet",
                    endpoint="Bench",
                    variant="A",
                    index=i,
                    port=port,
                    state="InService",
                    updated_at=now,
                )
            )
        registry.set_routing(
            EndpointRouting(
                endpoint="Bench",
                variants=[
                    VariantRoute(
                        variant="A",
                        weight=1,
                        fleets=[FleetRoute(fleet_id="Bench.A.fleet", share=1)],
                    )
                ],
            )
        )

        def greenshift(access_log: bool) -> tuple[HAProxyProcess, threading.Event]:
            own = settings if access_log else nolog_settings
            hp = HAProxyProcess(settings.home_dir / ("dataplane" if access_log else "nolog"))
            sink = NullSink()
            collector = MetricsCollector(hp.paths.log_socket, sink, FleetConfigs(registry))
            collector.bind()
            local_stop = threading.Event()
            threading.Thread(target=collector.run, args=(local_stop,), daemon=True).start()
            controller = RouterController(registry, hp, own, access_log=access_log)
            controller.sync_once()
            return hp, local_stop

        direct_url = f"http://127.0.0.1:{ports[0]}/invocations"
        bare_url = f"http://127.0.0.1:{bare_port}/invocations"
        gs_url = f"{settings.runtime_url}/endpoints/Bench/invocations"
        wait_ok(f"http://127.0.0.1:{bare_port}/ping", 10)
        gs_log, gs_log_stop = greenshift(access_log=True)
        gs_nolog, gs_nolog_stop = greenshift(access_log=False)
        hp = gs_log
        nolog_url = (
            f"{settings.runtime_url.rsplit(':', 1)[0]}:{gs_nolog_port}/endpoints/Bench/invocations"
        )

        s, c = args.seconds, args.connections
        targets = {
            "direct (1 instance)": (direct_url, lambda: [ports_pids[0]]),
            "bare HAProxy": (bare_url, lambda: [bare_pid]),
            "Greenshift": (gs_url, gs_log.worker_pids),
            "Greenshift, no access log": (nolog_url, gs_nolog.worker_pids),
        }
        print(
            f"wrk -t1 -c{c} -d{s}s, {args.instances} echo-v1 instances, "
            f"{args.rounds} interleaved rounds (median), this 2-core box\n"
        )
        full: dict[str, list[Run]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, (url, pids) in targets.items():
                full[name].append(wrk(url, s, c, 0, tmp, pids()))
        results = {name: median_run(runs) for name, runs in full.items()}
        # Half load: every connection paced by wrk's delay() so the total is about half the
        # bare HAProxy's throughput; both proxies get the same pacing.
        half_c = 8
        delay = 1000.0 * half_c / (results["bare HAProxy"].rps / 2)
        half: dict[str, list[Run]] = {"bare HAProxy @half": [], "Greenshift @half": []}
        for _ in range(args.rounds):
            half["bare HAProxy @half"].append(wrk(bare_url, s, half_c, delay, tmp, [bare_pid]))
            half["Greenshift @half"].append(
                wrk(gs_url, s, half_c, delay, tmp, gs_log.worker_pids())
            )
        results.update({name: median_run(runs) for name, runs in half.items()})
        gs_log_stop.set()
        gs_nolog_stop.set()
        gs_nolog.stop()

        print(f"{'target':28} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'proxy CPU us/req':>17}")
        for name, r in results.items():
            cpu = f"{r.cpu_us_per_req:17.1f}" if r.cpu_us_per_req else f"{'-':>17}"
            print(f"{name:28} {r.rps:8.0f} {r.p50_ms:7.2f} {r.p99_ms:7.2f} {cpu}")
        bare, gs = results["bare HAProxy"], results["Greenshift"]
        nolog = results["Greenshift, no access log"]
        print()
        print(f"Greenshift / bare HAProxy throughput:     {gs.rps / bare.rps:.1%} (target >= 90 %)")
        print(f"Greenshift, no access log / bare:         {nolog.rps / bare.rps:.1%}")
        print(
            f"HAProxy CPU per request, Greenshift / bare: "
            f"{gs.cpu_us_per_req / bare.cpu_us_per_req:.1%}"
        )
        print(
            f"bare HAProxy / direct throughput:         "
            f"{bare.rps / results['direct (1 instance)'].rps:.1%}"
        )
        hb, hg = results["bare HAProxy @half"], results["Greenshift @half"]
        print(
            f"p99 added by Greenshift at half load ({hb.rps:.0f} vs {hg.rps:.0f} req/s): "
            f"{hg.p99_ms - hb.p99_ms:+.2f} ms (target <= 1 ms); p50 {hg.p50_ms - hb.p50_ms:+.2f} ms"
        )
    finally:
        stop.set()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        if hp is not None:
            hp.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
