"""Data capture and response streaming through the data plane (issue 15). Prints:

1. Throughput with capture off and at 100 % (target: capture costs at most 10 %): wrk against
   two endpoints of one Greenshift HAProxy, each a fleet over the same model instance, one
   of them with DataCaptureConfig at 100 % (Input and Output); the capture writer runs in this
   process and writes real files. Rounds interleaved, median [min-max]; CPU us/req counts the
   HAProxy worker and this process (the writer). The instance: `--model echo` (echo-v1, which
   does next to nothing, the worst case for capture's share) or `--model sklearn` (the
   scikit-learn model of tests/e2e/test_real_models.py, trained here, served by the built-in
   server in SageMaker's scikit-learn flavour from its own environment, asked for a CSV
   prediction).
2. `--callgrind`: HAProxy's user-space instructions per request (valgrind callgrind, N2 minus N1
   sequential keep-alive requests, one thread), deterministic where wall-clock numbers on a
   shared 2-core box are not: capture off, capture 100 %, and the plain path without the
   response-stream rules (the config as it was before them) to show they cost the plain
   InvokeEndpoint path nothing measurable.
3. Time to first streamed part: the `streamer` model (first part at once, then one every
   300 ms), direct to the instance vs through the data plane; median and p90 of sequential
   requests.

    .venv/bin/python bench/capture_bench.py [--seconds 5] [--rounds 3] [--callgrind]
        [--model echo|sklearn]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from dataplane_bench import BODY, free_port, median_run, spread, wait_ok, wrk  # noqa: E402

from greenshift import binaries  # noqa: E402
from greenshift.capture.writer import CaptureWriter  # noqa: E402
from greenshift.dataplane import config as dpconfig  # noqa: E402
from greenshift.dataplane.controller import RouterController  # noqa: E402
from greenshift.dataplane.haproxy import HAProxyProcess  # noqa: E402
from greenshift.dataplane.relay import start_relays  # noqa: E402
from greenshift.registry.records import (  # noqa: E402
    EndpointConfigRecord,
    EndpointRouting,
    FleetRecord,
    FleetRoute,
    InstanceRecord,
    VariantRoute,
)
from greenshift.registry.sql import SqlRegistry  # noqa: E402
from greenshift.settings import Settings  # noqa: E402

STREAM_PATH = "/endpoints/Chat/invocations-response-stream"
# What wrk sends each model, and the capture's content types for it (captured as text).
REQUESTS = {
    "echo": (BODY, {"Content-Type": "application/json"}),
    "sklearn": ("1.5,2.5", {"Content-Type": "text/csv", "Accept": "text/csv"}),
}


def model(name: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "greenshift.fleet.model_server",
            "--model-dir",
            str(REPO / "examples/models" / name),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    wait_ok(f"http://127.0.0.1:{port}/ping")
    return proc, port


def sklearn_instance(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The scikit-learn model of the e2e tests, trained now, served as a fleet serves it."""
    from greenshift.fleet.modeldata import safe_extract
    from greenshift.fleet.processes import ProcessRuntime, model_environment, server_command
    from greenshift.fleet.runtime import InstanceSpec
    from tests.e2e.test_real_models import sklearn_model, sklearn_python

    archive = sklearn_model(tmp / "sklearn-build", (2.0, -1.0, 0.5))
    model_dir = tmp / "sklearn-model"
    safe_extract(archive, model_dir)  # as a fleet unpacks its ModelDataUrl
    port = free_port()
    python = sklearn_python()
    command = server_command(
        python, ProcessRuntime().server_copy(), "bench-sklearn.0", model_dir, port, "sklearn"
    )
    fleet = FleetRecord(
        fleet_id="bench-sklearn",
        endpoint="bench",
        deployment_id="d",
        variant="A",
        config_name="bench",
        model_name="sklearn",
        instance_type="ml.m5.large",
        model_spec={},
        created_at=datetime.now(UTC),
    )
    spec = InstanceSpec(
        instance_id="bench-sklearn.0",
        fleet=fleet,
        model_dir=model_dir,
        host="127.0.0.1",
        port=port,
        environment={},
        log_path=tmp / "sklearn.log",
    )
    env = model_environment(spec, python.parent.parent)  # what a fleet's instance sees
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ok(f"http://127.0.0.1:{port}/ping")
    return proc, port


def add_endpoint(
    registry: SqlRegistry, endpoint: str, port: int, capture: dict[str, object] | None
) -> None:
    now = datetime.now(UTC)
    fleet = f"{endpoint}.A.fleet"
    spec: dict[str, object] = {"EndpointConfigName": f"{endpoint}-cfg"}
    if capture:
        spec["DataCaptureConfig"] = capture
    registry.create_endpoint_config(
        EndpointConfigRecord(name=f"{endpoint}-cfg", arn="arn:x", created_at=now, spec=spec)
    )
    registry.upsert_fleet(
        FleetRecord(
            fleet_id=fleet,
            endpoint=endpoint,
            deployment_id="d",
            variant="A",
            config_name=f"{endpoint}-cfg",
            model_name="m",
            instance_type="ml.m5.large",
            model_spec={},
            created_at=now,
        )
    )
    registry.upsert_instance(
        InstanceRecord(
            instance_id=f"{fleet}.0",
            fleet_id=fleet,
            endpoint=endpoint,
            variant="A",
            index=0,
            port=port,
            state="InService",
            updated_at=now,
        )
    )
    registry.set_routing(
        EndpointRouting(
            endpoint=endpoint,
            variants=[
                VariantRoute(variant="A", weight=1, fleets=[FleetRoute(fleet_id=fleet, share=1)])
            ],
        )
    )


def sequential(port: int, path: str, n: int, model: str = "echo") -> None:
    body, headers = REQUESTS[model]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(n):
        conn.request("POST", path, body, headers)
        r = conn.getresponse()
        r.read()
        assert r.status == 200, r.status
    conn.close()


def callgrind_instructions(
    cfg: Path, port: int, path: str, n: int, tmp: Path, model: str = "echo"
) -> int:
    out = tmp / f"cg-{os.getpid()}-{n}-{path.replace('/', '_')}.out"
    proc = subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            binaries.haproxy(),
            "-f",
            str(cfg),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                sequential(port, path, 1, model)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        sequential(port, path, n - 1, model)
    finally:
        proc.terminate()
        proc.wait(60)
    for line in out.read_text().splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError("no callgrind summary")


def without_stream_rules(text: str) -> str:
    """The rendered config as it was before InvokeEndpointWithResponseStream."""
    for line in dpconfig.response_stream_rules().splitlines(keepends=True):
        text = text.replace(line, "")
    text = text.replace(dpconfig.STREAM_FRONTEND_OPTIONS, "")
    return text.replace("/invocations(-response-stream)?$", "/invocations$")


def first_part_seconds(port: int, path: str, headers: dict[str, str], n: int) -> list[float]:
    body = '{"parts": 3, "delay": 0.3}'
    times = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(n):
        started = time.perf_counter()
        conn.request("POST", path, body, {"Content-Type": "application/json", **headers})
        r = conn.getresponse()
        assert r.status == 200, (r.status, r.read())
        first = r.read1(65536)
        times.append(time.perf_counter() - started)
        assert first
        r.read()
    conn.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--callgrind-requests", type=int, default=300)
    parser.add_argument("--stream-requests", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--model", choices=sorted(REQUESTS), default="echo")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gs-capture-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    hp: HAProxyProcess | None = None
    relaying: list[threading.Thread] = []
    try:
        served, served_port = sklearn_instance(tmp) if args.model == "sklearn" else model("echo-v1")
        streamer, stream_port = model("streamer")
        procs += [served, streamer]
        body, headers = REQUESTS[args.model]
        settings = Settings(
            home=tmp / "home",
            runtime_port=free_port(),
            stats_port=free_port(),
            database_url=f"sqlite:///{tmp / 'registry.db'}",
        )
        registry = SqlRegistry(settings.registry_url)
        capture = {
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"file://{tmp / 'capture'}",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {
                "JsonContentTypes": ["application/json"],
                "CsvContentTypes": ["text/csv"],
            },
        }
        add_endpoint(registry, "Off", served_port, None)
        add_endpoint(registry, "Cap", served_port, capture)
        add_endpoint(registry, "Chat", stream_port, None)
        hp = HAProxyProcess(settings.home_dir / "dataplane")
        controller = RouterController(registry, hp, settings)
        writer = CaptureWriter(hp.paths.capture_socket, controller.captures)
        writer.bind()
        writing = threading.Thread(target=writer.run, args=(stop,), daemon=True)
        writing.start()
        relaying = start_relays(hp.paths, sigv4=False, stop=stop)  # streams pass the stream relay
        controller.sync_once()
        base = settings.runtime_url
        targets = {
            "capture off": f"{base}/endpoints/Off/invocations",
            "capture 100 %": f"{base}/endpoints/Cap/invocations",
        }

        def pids() -> list[int | str]:
            return [*hp.worker_pids(), os.getpid()] if hp else []

        runs: dict[str, list] = {name: [] for name in targets}  # type: ignore[type-arg]
        names = list(targets)
        writer_cpu: dict[str, float] = {name: 0.0 for name in targets}  # this process's CPU
        for i in range(args.rounds):
            for name in names[i % 2 :] + names[: i % 2]:
                before = time.process_time()
                runs[name].append(
                    wrk(
                        targets[name],
                        args.seconds,
                        args.connections,
                        0,
                        tmp,
                        pids(),
                        1,
                        body=body,
                        headers=headers,
                    )
                )
                writer_cpu[name] += time.process_time() - before
        # Let the queues drain: HAProxy's (capture.lua) and the writer's.
        sent = sum(x.requests for x in runs["capture 100 %"])
        deadline = time.monotonic() + 30
        while writer.written + writer.lost < sent and time.monotonic() < deadline:
            time.sleep(0.5)
        print(
            f"wrk -t1 -c{args.connections} -d{args.seconds}s, {args.rounds} rounds, one "
            f"{args.model} instance"
        )
        print(
            f"{'target':16} {'req/s':>8} {'[min-max]':>13} {'p50 ms':>7} {'p99 ms':>7} us/req"
            " (of it the writer)"
        )
        med = {}
        for name, rs in runs.items():
            r = med[name] = median_run(rs)
            print(
                f"{name:16} {r.rps:8.0f} {spread([x.rps for x in rs]):>13} {r.p50_ms:7.2f} "
                f"{r.p99_ms:7.2f} {r.cpu_us_per_req:6.1f} "
                f"({writer_cpu[name] * 1e6 / max(1, sum(x.requests for x in rs)):.1f})"
            )
        writer.flush()
        ratio = med["capture 100 %"].rps / med["capture off"].rps
        print(f"capture 100 % / off throughput: {ratio:.1%}")
        print(
            f"records written: {writer.written} of {sent} sent; lost (counted) {writer.lost}; "
            f"unaccounted {sent - writer.written - writer.lost}; {writer.stats()}"
        )
        direct = first_part_seconds(
            stream_port,
            "/invocations",
            {"X-Greenshift-Response-Stream": "invocations-response-stream"},
            args.stream_requests,
        )
        via = first_part_seconds(settings.runtime_port, STREAM_PATH, {}, args.stream_requests)
        for name, ts in (("direct", direct), ("data plane", via)):
            ts = sorted(ts)
            print(
                f"time to first part, {name:10}: median {statistics.median(ts) * 1e3:.2f} ms, "
                f"p90 {ts[int(len(ts) * 0.9) - 1] * 1e3:.2f} ms (n={len(ts)})"
            )
        print(
            f"added by the data plane (median): "
            f"{(statistics.median(via) - statistics.median(direct)) * 1e3:+.2f} ms"
        )

        if args.callgrind:
            cfg_text = hp.paths.config.read_text()
            port = free_port()
            cfg_text = cfg_text.replace(f":{settings.runtime_port}\n", f":{port}\n")
            cfg_text = cfg_text.replace(f":{settings.stats_port}\n", f":{free_port()}\n")
            cfg_text = cfg_text.replace(str(hp.paths.admin_socket), str(tmp / "cg.sock"))
            configs = {
                "as shipped": cfg_text,
                "before the stream rules": without_stream_rules(cfg_text),
            }
            n1, n2 = 100, 100 + args.callgrind_requests
            print(f"\nHAProxy instructions per request (callgrind, ({n2} - {n1}) requests):")
            for label, text in configs.items():
                cfg = tmp / "cg.cfg"
                cfg.write_text(text)
                for endpoint in ("Off", "Cap"):
                    path = f"/endpoints/{endpoint}/invocations"
                    a = callgrind_instructions(cfg, port, path, n1, tmp, args.model)
                    b = callgrind_instructions(cfg, port, path, n2, tmp, args.model)
                    print(f"  {label:24} {endpoint:4} {(b - a) / (n2 - n1):10,.0f}")
    finally:
        stop.set()
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
        if hp is not None:
            hp.stop()
        for thread in relaying:
            thread.join(10)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
