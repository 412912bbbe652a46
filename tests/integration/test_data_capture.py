"""Data capture through the data plane: HAProxy samples, capture.lua queues, the capture writer
writes SageMaker's format under SageMaker's layout. Real HAProxy, real model servers, boto3."""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from greenshift.capture.writer import CaptureWriter
from greenshift.registry.records import EndpointConfigRecord, FleetRecord
from tests.integration.dataplane_support import Dataplane, runtime_client, wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def dp(tmp_path: Path) -> Iterator[tuple[Dataplane, CaptureWriter]]:
    plane = Dataplane(tmp_path)
    writer = CaptureWriter(
        plane.haproxy.paths.capture_socket, plane.controller.captures, flush_seconds=0.2
    )
    writer.bind()
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield plane, writer
    finally:
        plane.close()
        stop.set()
        thread.join(15)
        assert not thread.is_alive()


def capture_config(dest: Path, percent: float, json_types: bool = True) -> dict[str, Any]:
    config: dict[str, Any] = {
        "EnableCapture": True,
        "InitialSamplingPercentage": percent,
        "DestinationS3Uri": f"file://{dest}",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    }
    if json_types:
        config["CaptureContentTypeHeader"] = {"JsonContentTypes": ["application/json"]}
    return config


def deploy(
    dp: Dataplane, fleet_id: str, config: str, model: str, capture: dict[str, Any] | None
) -> None:
    spec: dict[str, Any] = {"EndpointConfigName": config, "ProductionVariants": []}
    if capture is not None:
        spec["DataCaptureConfig"] = capture
    now = datetime.now(UTC)
    dp.registry.create_endpoint_config(
        EndpointConfigRecord(name=config, arn=f"arn:{config}", created_at=now, spec=spec)
    )
    dp.registry.upsert_fleet(
        FleetRecord(
            fleet_id=fleet_id,
            endpoint="Shop",
            deployment_id="d-1",
            variant="A",
            config_name=config,
            model_name="m",
            instance_type="ml.m5.large",
            model_spec={},
            created_at=now,
        )
    )
    dp.instance("Shop", "A", fleet_id, 0, dp.model(model))


def runtime(dp: Dataplane) -> Any:
    return runtime_client(dp.url)


def records(dest: Path) -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, json.loads(line))
        for path in sorted(dest.rglob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def test_every_invocation_at_100_percent_in_sagemakers_format(
    dp: tuple[Dataplane, CaptureWriter], tmp_path: Path
) -> None:
    plane, writer = dp
    dest = tmp_path / "capture"
    deploy(plane, "Shop.A.v1", "cfg-v1", "echo-v1", capture_config(dest, 100))
    plane.route("Shop", [("A", 1.0, [("Shop.A.v1", 1.0)])])
    plane.controller.sync_once()
    client = runtime(plane)
    sent, received = [], []
    for i in range(30):
        body = json.dumps({"i": i})
        answer = client.invoke_endpoint(
            EndpointName="Shop",
            ContentType="application/json",
            Body=body,
            CustomAttributes=f"trace={i}",
            InferenceId=f"id-{i}",
        )
        sent.append(body)
        received.append(answer["Body"].read().decode())
    wait_for(lambda: len(records(dest)) >= 30, 10, "30 capture records")

    found = records(dest)
    assert len(found) == 30
    by_input = {r["captureData"]["endpointInput"]["data"]: r for _, r in found}
    assert set(by_input) == set(sent)
    for body, answer in zip(sent, received, strict=True):
        rec = by_input[body]
        assert rec["eventVersion"] == "0"
        assert rec["captureData"]["endpointInput"] == {
            "observedContentType": "application/json",
            "mode": "INPUT",
            "data": body,
            "encoding": "JSON",
        }
        out = rec["captureData"]["endpointOutput"]
        assert (out["mode"], out["encoding"], out["data"]) == ("OUTPUT", "JSON", answer)
        meta = rec["eventMetadata"]
        i = json.loads(body)["i"]
        assert meta["customAttributes"] == [f"trace={i}"]
        assert meta["inferenceId"] == f"id-{i}"
        assert meta["endpointConfigName"] == "cfg-v1"
        assert datetime.fromisoformat(meta["inferenceTime"].replace("Z", "+00:00"))
        assert len(meta["eventId"]) == 36
    # SageMaker's layout: <endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl
    for path, rec in found:
        rel = path.relative_to(dest).parts
        when = meta_time(rec)
        assert rel[:6] == ("Shop", "A", f"{when:%Y}", f"{when:%m}", f"{when:%d}", f"{when:%H}")
    assert writer.dropped == 0


def meta_time(rec: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(rec["eventMetadata"]["inferenceTime"].replace("Z", "+00:00"))


def test_20_percent_sampling_and_a_canary_tells_the_fleets_apart(
    dp: tuple[Dataplane, CaptureWriter], tmp_path: Path
) -> None:
    """Blue (echo-v1, cfg-v1) captures 20 % without content-type lists (base64, SageMaker's
    default); green (echo-v2, cfg-v2) 100 % during a 50/50 canary; a third config without
    DataCaptureConfig captures nothing."""
    plane, writer = dp
    dest = tmp_path / "capture"
    deploy(plane, "Shop.A.v1", "cfg-v1", "echo-v1", capture_config(dest, 20, json_types=False))
    deploy(plane, "Shop.A.v2", "cfg-v2", "echo-v2", capture_config(dest, 100))
    deploy(plane, "Shop.A.v3", "cfg-v3", "echo-v1", None)
    plane.route("Shop", [("A", 1.0, [("Shop.A.v1", 0.5), ("Shop.A.v2", 0.5), ("Shop.A.v3", 0)])])
    plane.controller.sync_once()
    client = runtime(plane)
    n = 1000
    versions = {"v1": 0, "v2": 0}
    for i in range(n):
        answer = client.invoke_endpoint(
            EndpointName="Shop", ContentType="application/json", Body=json.dumps({"i": i})
        )
        versions[json.loads(answer["Body"].read())["version"]] += 1
    expected = versions["v1"] * 0.2 + versions["v2"]

    def green() -> int:
        return sum(r["eventMetadata"]["fleetId"] == "Shop.A.v2" for _, r in records(dest))

    wait_for(lambda: green() >= versions["v2"], 10, "green's records")
    time.sleep(0.5)  # capture.lua sends every 100 ms: let blue's last ones arrive too
    writer.flush()
    found = [r for _, r in records(dest)]
    by_config: dict[str, list[dict[str, Any]]] = {"cfg-v1": [], "cfg-v2": []}
    for rec in found:
        by_config[rec["eventMetadata"]["endpointConfigName"]].append(rec)
    assert len(by_config["cfg-v2"]) == versions["v2"]
    # Blue's share: binomial(v1, 0.2); 4.5 standard deviations is a false alarm in ~1e-5 runs.
    sd = math.sqrt(versions["v1"] * 0.2 * 0.8)
    assert abs(len(by_config["cfg-v1"]) - versions["v1"] * 0.2) < 4.5 * sd
    assert abs(len(found) - expected) < 4.5 * sd
    for rec in by_config["cfg-v1"]:
        out = rec["captureData"]["endpointOutput"]
        assert out["encoding"] == "BASE64"
        assert json.loads(base64.b64decode(out["data"]))["version"] == "v1"
    for rec in by_config["cfg-v2"]:
        assert json.loads(rec["captureData"]["endpointOutput"]["data"])["version"] == "v2"
    # Traffic to the capture-less config: nothing is captured for it.
    plane.route("Shop", [("A", 1.0, [("Shop.A.v3", 1.0)])])
    plane.controller.sync_once()
    # That was a reload (v1 and v2 left the routing): the first request still reaches the old
    # worker on the client's connection, which hands it to the new one (config.handover_rules).
    for _ in range(20):
        answer = client.invoke_endpoint(
            EndpointName="Shop", ContentType="application/json", Body=b'{"to": "v3"}'
        )
        assert answer["Body"].read() == b'{"version": "v1", "input": {"to": "v3"}}'  # cfg-v3
    time.sleep(1.0)  # capture.lua sends within 20 ms, the writer flushes every 0.2 s
    writer.flush()
    found = [r for _, r in records(dest)]
    assert not [r for r in found if r["eventMetadata"]["endpointConfigName"] == "cfg-v3"]
    inputs = [r["captureData"]["endpointInput"] for r in found]
    given = [base64.b64decode(i["data"]) if i["encoding"] == "BASE64" else i["data"].encode()
             for i in inputs]  # fmt: skip
    assert b'{"to": "v3"}' not in given
    assert writer.lost == 0


def test_every_answer_across_reloads_is_captured_once(
    dp: tuple[Dataplane, CaptureWriter], tmp_path: Path
) -> None:
    """Two capturing fleets of one variant (a canary's blue and green) under three sequential
    callers while ten reloads come and go: each answer is one record, whichever worker answered
    it, and none is counted as written without being in a file."""
    plane, writer = dp
    dest = tmp_path / "capture"
    deploy(plane, "Shop.A.v1", "cfg-v1", "echo-v1", capture_config(dest, 100))
    deploy(plane, "Shop.A.v2", "cfg-v2", "echo-v2", capture_config(dest, 100))
    both = [("Shop.A.v1", 0.5), ("Shop.A.v2", 0.5)]
    plane.route("Shop", [("A", 1.0, both)])
    plane.controller.sync_once()
    stop = threading.Event()
    answered: list[tuple[int, int]] = []
    failures: list[str] = []

    def call(caller: int) -> None:
        client = runtime(plane)
        for i in range(5000):  # a bound; `stop` ends it first
            if stop.is_set():
                return
            body = json.dumps({"caller": caller, "i": i})
            try:
                client.invoke_endpoint(
                    EndpointName="Shop", ContentType="application/json", Body=body
                )["Body"].read()
            except Exception as e:  # any failure fails the test below
                failures.append(repr(e))
                return
            answered.append((caller, i))

    callers = [threading.Thread(target=call, args=(c,)) for c in range(3)]
    for t in callers:
        t.start()
    reloads = plane.controller.reloads
    for r in range(10):  # green leaves the routing and comes back: a reload each time
        time.sleep(0.2)
        plane.route("Shop", [("A", 1.0, [("Shop.A.v1", 1.0)] if r % 2 == 0 else both)])
        plane.controller.sync_once()
    time.sleep(0.2)
    stop.set()
    for t in callers:
        t.join(30)
    assert not [t for t in callers if t.is_alive()]
    assert plane.controller.reloads == reloads + 10
    assert not failures
    assert len(answered) > 100

    def captured() -> list[tuple[int, int]]:
        writer.flush()
        inputs = (json.loads(r["captureData"]["endpointInput"]["data"]) for _, r in records(dest))
        return [(d["caller"], d["i"]) for d in inputs]

    wait_for(lambda: len(captured()) >= len(answered), 10, "a record for every answer")
    assert sorted(captured()) == sorted(answered)
    assert writer.written == len(answered)
    assert writer.lost == 0
