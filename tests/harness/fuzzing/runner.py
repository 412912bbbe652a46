"""Run fuzz cases against a running stack and judge them.

Control API: no answer >= 500, an answer for every case, and a rejected request (4xx) leaves the
registry as it was (models, configs, endpoints with DescribeEndpoint of each, alarm definitions).
Runtime: no 5xx but the documented 503 ServiceUnavailable, and the endpoint still serves.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.harness.fuzzing import control, runtime
from tests.harness.fuzzing.wire import RawAnswer, RawRequest, send

SETTLING = {"Creating", "Updating", "Deleting", "RollingBack", "SystemUpdating"}


@dataclass
class Finding:
    target: str
    label: str
    problem: str
    request: str  # the request's head and the start of its body, to reproduce it


@dataclass
class FuzzReport:
    cases: Counter[str] = field(default_factory=Counter)  # per target
    statuses: Counter[int] = field(default_factory=Counter)
    accepted: int = 0
    findings: list[Finding] = field(default_factory=list)

    def add(self, target: str, status: int | None) -> None:
        self.cases[target] += 1
        self.statuses[status or 0] += 1

    @property
    def total(self) -> int:
        return sum(self.cases.values())


def _describe(request: RawRequest) -> str:
    head = request.head("127.0.0.1").decode("utf-8", "replace")
    if len(head) > 400:  # keep the target and the body visible: a signature is just noise
        head = head[:200] + " ... " + head[-150:]
    return head + request.body[:300].decode("utf-8", "replace")


class ControlApi:
    """A well-behaved client of the API (signed when keys are given), for snapshots."""

    def __init__(self, host: str, port: int, keys: control.Keys | None) -> None:
        self.host, self.port, self.keys = host, port, keys

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    def send(self, request: RawRequest, timeout: float = 30.0) -> RawAnswer:
        return send(self.host, self.port, request, timeout)

    def call(self, target: str, document: dict[str, Any]) -> dict[str, Any]:
        request = control.call(target, document)
        if self.keys is not None:
            service = "monitoring" if target.startswith(control.CLOUDWATCH_TARGET) else "sagemaker"
            headers = control.sign(request, self.authority, self.keys, service)
            request = RawRequest(request.method, request.path, headers, request.body)
        answer = self.send(request)
        if answer.status != 200:
            raise RuntimeError(f"{target} answered {answer.status}: {answer.body[:300]!r}")
        result: dict[str, Any] = json.loads(answer.body or b"{}")
        return result

    def snapshot(self) -> dict[str, Any]:
        """What a rejected request must not change."""
        endpoints = self.call("SageMaker.ListEndpoints", {"MaxResults": 100})["Endpoints"]
        alarms = self.call(f"{control.CLOUDWATCH_TARGET}.DescribeAlarms", {"MaxRecords": 100})
        return {
            "models": self.call("SageMaker.ListModels", {"MaxResults": 100})["Models"],
            "configs": self.call("SageMaker.ListEndpointConfigs", {"MaxResults": 100})[
                "EndpointConfigs"
            ],
            "endpoints": {e["EndpointName"]: self._describe(e["EndpointName"]) for e in endpoints},
            # The evaluator moves alarm states on its own: compare definitions only.
            "alarms": [
                {k: v for k, v in a.items() if not k.startswith("State")}
                for a in alarms.get("MetricAlarms", [])
            ],
        }

    def _describe(self, name: str) -> dict[str, Any] | None:
        """DescribeEndpoint, or None when the endpoint went away since it was listed."""
        try:
            return self.call("SageMaker.DescribeEndpoint", {"EndpointName": name})
        except RuntimeError as exc:
            if "Could not find endpoint" in str(exc):
                return None
            raise

    def settle(self, timeout: float = 120.0) -> dict[str, Any]:
        """A snapshot once no endpoint is mid-operation (an accepted case may have started one)."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.snapshot()
            busy = [
                name for name, d in snap["endpoints"].items() if d.get("EndpointStatus") in SETTLING
            ]
            if not busy or time.monotonic() > deadline:
                return snap
            time.sleep(0.5)


def fuzz_control(
    api: ControlApi,
    cases: int,
    seconds: float,
    seed: int,
    names: list[str],
    report: FuzzReport,
    sign_keys: control.Keys | None = None,
) -> FuzzReport:
    """Up to `cases` random control-API cases within `seconds`."""
    rng = random.Random(seed)
    ops = control.served_operations()
    before = api.settle()
    deadline = time.monotonic() + seconds
    for _ in range(cases):
        if time.monotonic() > deadline:
            break
        case = control.generate(ops, rng, names, api.authority, sign_keys)
        try:
            answer = api.send(case.request)
        except OSError as exc:
            answer = RawAnswer(None, body=repr(exc).encode())
        report.add(case.target, answer.status)
        if answer.status is None or answer.status >= 500:
            report.findings.append(
                Finding(
                    case.target,
                    case.label,
                    f"answered {answer.status}: {answer.body[:300]!r}",
                    _describe(case.request),
                )
            )
            before = api.settle()
            continue
        if answer.status < 400:
            report.accepted += 1
            before = api.settle()
            continue
        after = api.snapshot()
        if after != before:
            if after == (settled := api.settle()) and _only_async(before, settled):
                before = settled
                continue
            report.findings.append(
                Finding(
                    case.target,
                    case.label,
                    f"rejected with {answer.status} but the registry changed",
                    _describe(case.request),
                )
            )
            before = settled
    return report


def _only_async(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """True when the only difference is an endpoint that was mid-operation finishing it."""
    if {k: v for k, v in before.items() if k != "endpoints"} != {
        k: v for k, v in after.items() if k != "endpoints"
    }:
        return False
    for name in set(before["endpoints"]) | set(after["endpoints"]):
        old, new = before["endpoints"].get(name), after["endpoints"].get(name)
        if old != new and (old or {}).get("EndpointStatus") not in SETTLING:
            return False
    return True


def invoke_ok(host: str, port: int, endpoint: str) -> bool:
    answer = send(
        host,
        port,
        RawRequest(
            "POST",
            f"/endpoints/{endpoint}/invocations",
            (("Content-Type", "application/json"),),
            b'{"ok": 1}',
        ),
        timeout=10,
    )
    return answer.status == 200


def fuzz_runtime(
    host: str,
    port: int,
    endpoint: str,
    cases: int,
    seconds: float,
    seed: int,
    report: FuzzReport,
) -> FuzzReport:
    """The fixed boundary cases, then up to `cases` random runtime cases within `seconds`."""
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    plan = runtime.fixed_cases(endpoint)
    while len(plan) < cases + len(runtime.fixed_cases(endpoint)):
        plan.append(runtime.generate(rng, endpoint))
        if len(plan) > cases + 10:
            break
    for n, case in enumerate(plan):
        if n >= len(runtime.fixed_cases(endpoint)) and time.monotonic() > deadline:
            break
        try:
            answer = send(host, port, case.request, timeout=3 if case.may_hang else 30)
        except OSError as exc:
            answer = RawAnswer(None, body=repr(exc).encode())
        report.add(f"runtime:{case.label.split('+')[0]}", answer.status)
        problem = _runtime_problem(case, answer)
        if problem:
            report.findings.append(Finding("runtime", case.label, problem, _describe(case.request)))
        if answer.status is None or n % 25 == 0:
            # No answer (or every 25 cases): the data plane must still serve.
            if not invoke_ok(host, port, endpoint):
                report.findings.append(
                    Finding("runtime", case.label, "the endpoint stopped serving", "")
                )
    return report


def _runtime_problem(case: runtime.RuntimeCase, answer: RawAnswer) -> str | None:
    status = answer.status
    if case.expect is not None and status != case.expect:
        return f"expected {case.expect}, got {status}: {answer.body[:200]!r}"
    if status is None:
        # HAProxy closes on a request it cannot parse; fine if the case was malformed enough.
        return None if case.may_hang or _malformed(case) else "no answer"
    if status >= 500 and not (
        status == 503 and answer.headers.get("x-amzn-errortype") == "ServiceUnavailable"
    ):
        kind = answer.headers.get("x-amzn-errortype")
        return f"answered {status} ({kind}): {answer.body[:200]!r}"
    return None


def _malformed(case: runtime.RuntimeCase) -> bool:
    return any(k in case.label for k in ("huge_header", "many_headers", "bad_length"))
