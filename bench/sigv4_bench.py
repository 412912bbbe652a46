"""Runtime SigV4 cost: Greenshift's data plane with access keys (Lua SigV4 check on every
InvokeEndpoint) against the same data plane without, same instance, same load tool (wrk).

One signed request (botocore's SigV4Auth, valid for five minutes) is replayed by wrk, so the
client pays nothing per request and the difference is the server's check: header parsing, two
SHA-256 (body, canonical request) and one HMAC (the derived key is cached per key and day).
HAProxy and the instance run on CPU `--serve-cpu`, wrk alone on `--load-cpu`; rounds alternate
the order of the two targets; the median round is printed. Needs `wrk`; not part of the tests.

Then large bodies (`--large`, default 10 requests per size): the median time of one invocation
of 32 KB (verified in HAProxy's buffer), 1 MB and 6 MB (verified through the body-hash relay,
greenshift/dataplane/relay.py), signed, against the same body unsigned on the plane without keys.

    .venv/bin/python bench/sigv4_bench.py [--seconds 5] [--rounds 3] [--connections 16]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from greenshift.dataplane.controller import RouterController  # noqa: E402
from greenshift.dataplane.relay import BodyHashRelay  # noqa: E402
from greenshift.dataplane.sigv4 import SIGV4_MAX_BODY_BYTES  # noqa: E402
from tests.integration.dataplane_support import Dataplane  # noqa: E402

KEY, SECRET = "AKIDBENCH0001", "bench-secret"
BODY = '{"x": 1}'


def plane(tmp: Path, keys: bool, stop: threading.Event) -> Dataplane:
    dp = Dataplane(tmp)
    if keys:
        dp.settings = dp.settings.model_copy(update={"access_keys": f"{KEY}:{SECRET}"})
        dp.controller = RouterController(dp.registry, dp.haproxy, dp.settings)
        relay = BodyHashRelay(dp.haproxy.paths.relay_socket, dp.haproxy.paths.relayed_socket)
        relay.bind()
        threading.Thread(target=relay.run, args=(stop,), daemon=True).start()
    dp.instance("Bench", "A", "Bench.A.aaaa", 0, dp.model("echo-v1"))
    dp.route("Bench", [("A", 1.0, [("Bench.A.aaaa", 1.0)])])
    dp.controller.sync_once()
    return dp


def pin(pids: list[int], cpu: int) -> None:
    for pid in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)], capture_output=True)
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
        for child in children.stdout.split():
            subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), child], capture_output=True)


def script(dp: Dataplane, tmp: Path, signed: bool) -> Path:
    url = dp.url + "/endpoints/Bench/invocations"
    headers = {"Content-Type": "application/json"}
    if signed:
        request = AWSRequest(method="POST", url=url, data=BODY.encode(), headers=headers)
        SigV4Auth(Credentials(KEY, SECRET), "sagemaker", "us-east-1").add_auth(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
    lua = 'wrk.method = "POST"\n' + f"wrk.body = '{BODY}'\n"
    lua += "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    path = tmp / f"wrk-{'signed' if signed else 'plain'}.lua"
    path.write_text(lua)
    return path


def haproxy_cpu(dp: Dataplane) -> float:
    """CPU seconds used so far by the HAProxy master and its worker(s)."""
    pids = [str(dp.haproxy.pid)]
    pids += subprocess.run(
        ["pgrep", "-P", str(dp.haproxy.pid)], capture_output=True, text=True
    ).stdout.split()
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wrk(url: str, lua: Path, seconds: int, connections: int, cpu: int) -> tuple[float, float]:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            str(cpu),
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(lua),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"errors in the run:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"\s99%\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    value = float(re.sub(r"[a-z]+$", "", p99))
    unit = re.search(r"[a-z]+$", p99).group(0)  # type: ignore[union-attr]
    return rps, value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def large_bodies(planes: dict[str, Dataplane], requests: int) -> dict[int, dict[str, float]]:
    """Median ms of one invocation per body size, signed (on) and unsigned (off)."""
    out: dict[int, dict[str, float]] = {}
    for size in (32_768, 1_048_576, 6_291_456):
        body = b'{"x": "' + b"a" * (size - 10) + b'"}'
        out[size] = {}
        for name, dp in planes.items():
            url = dp.url + "/endpoints/Bench/invocations"
            request = AWSRequest(
                method="POST", url=url, data=body, headers={"Content-Type": "application/json"}
            )
            if name == "on":
                SigV4Auth(Credentials(KEY, SECRET), "sagemaker", "us-east-1").add_auth(request)
            headers = dict(request.headers.items())
            times = []
            with httpx.Client(timeout=60) as client:
                for _ in range(requests):
                    start = time.perf_counter()
                    answer = client.post(url, content=body, headers=headers)
                    times.append((time.perf_counter() - start) * 1000)
                    if answer.status_code != 200:
                        raise SystemExit(f"{name} {size}: {answer.status_code} {answer.text[:200]}")
            out[size][name] = statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--serve-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--large", type=int, default=10, help="requests per large body size")
    args = parser.parse_args()
    stop = threading.Event()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "off").mkdir()
        (tmp / "on").mkdir()
        planes = {"off": plane(tmp / "off", False, stop), "on": plane(tmp / "on", True, stop)}
        try:
            for dp in planes.values():
                pin(
                    [p for p in (dp.haproxy.pid, *(m.proc.pid for m in dp.models)) if p],
                    args.serve_cpu,
                )
            scripts = {name: script(dp, tmp, name == "on") for name, dp in planes.items()}
            results: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
            cpu_us: dict[str, list[float]] = {"off": [], "on": []}
            for r in range(args.rounds):
                order = ["off", "on"] if r % 2 == 0 else ["on", "off"]
                for name in order:
                    dp = planes[name]
                    before = haproxy_cpu(dp)
                    run = wrk(
                        dp.url + "/endpoints/Bench/invocations",
                        scripts[name],
                        args.seconds,
                        args.connections,
                        args.load_cpu,
                    )
                    results[name].append(run)
                    done = run[0] * args.seconds
                    cpu_us[name].append((haproxy_cpu(dp) - before) * 1e6 / max(1.0, done))
            large = large_bodies(planes, args.large) if args.large else {}
        finally:
            stop.set()
            for dp in planes.values():
                dp.close()
    for name in ("off", "on"):
        rps = statistics.median(x for x, _ in results[name])
        p99 = statistics.median(y for _, y in results[name])
        runs = ", ".join(f"{x:.0f}" for x, _ in results[name])
        cpu = statistics.median(cpu_us[name])
        print(
            f"SigV4 {name:<3}  {rps:8.0f} req/s (rounds: {runs})  p99 {p99:.2f} ms  "
            f"HAProxy CPU {cpu:.0f} us/request"
        )
    off = statistics.median(x for x, _ in results["off"])
    on = statistics.median(x for x, _ in results["on"])
    print(f"SigV4 on / off: {on / off:.1%} of the throughput")
    for size, times in large.items():
        print(
            f"one {size:>9,}-byte invocation, median of {args.large}: unsigned "
            f"{times['off']:.1f} ms, signed {times['on']:.1f} ms "
            f"({'relay' if size > SIGV4_MAX_BODY_BYTES else 'in the buffer'})"
        )


if __name__ == "__main__":
    main()
