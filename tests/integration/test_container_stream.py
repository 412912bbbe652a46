"""InvokeEndpointWithResponseStream of a container fleet: the container answers a plain chunked
`POST /invocations` (SageMaker's container contract) and the data plane's stream relay frames
each chunk as an event-stream PayloadPart (greenshift/dataplane/relay.py), read by boto3.

The framing tests need no Docker Engine (the "container" is a chunked HTTP server in this
process, behind a fleet record); the others run the example container
(`greenshift-test/example:stream`, examples/container/serve.py --mode stream) and remove every
container they started."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError

from greenshift.fleet.containers import DockerRuntime
from greenshift.fleet.images import runtime_kind
from greenshift.fleet.processes import ping
from greenshift.fleet.runtime import InstanceSpec
from greenshift.fleet.serving.eventstream import payload_part
from greenshift.registry.records import FleetRecord, InstanceRecord
from tests.docker_support import (
    FAILING_IMAGE,
    FRAMEWORK_IMAGE,
    STREAM_IMAGE,
    docker_images,  # noqa: F401  (the session fixture)
    framework_image,  # noqa: F401  (the fixture)
    remove_containers,
)
from tests.integration.dataplane_support import Dataplane, free_port, runtime_client

pytestmark = pytest.mark.timeout(120)


def fleet_record(image: str, fleet_id: str = "Chat.A.cont") -> FleetRecord:
    return FleetRecord(
        fleet_id=fleet_id,
        endpoint="Chat",
        deployment_id="dep-00000001",
        variant="A",
        config_name="cfg",
        model_name="m",
        instance_type="ml.m5.large",
        model_spec={"PrimaryContainer": {"Image": image, "Environment": {}}},
        created_at=datetime.now(UTC),
    )


def serve_fleet(dp: Dataplane, fleet: FleetRecord, port: int, pid: int) -> None:
    """Register `fleet` with one InService instance on `port` and route all of Chat to it."""
    now = datetime.now(UTC)
    dp.registry.upsert_fleet(fleet)
    dp.registry.upsert_instance(
        InstanceRecord(
            instance_id=f"{fleet.fleet_id}.0",
            fleet_id=fleet.fleet_id,
            endpoint="Chat",
            variant="A",
            index=0,
            port=port,
            pid=pid,
            state="InService",
            started_at=now,
            updated_at=now,
        )
    )
    dp.route("Chat", [("A", 1.0, [(fleet.fleet_id, 1.0)])])
    dp.controller.sync_once()


# --- the framing, byte for byte, without a Docker Engine -----------------------------------------

PARTS = [b"hello ", bytes(range(256)), "größer \u2603 ".encode(), b"x" * 40_000, b"end"]


class Chunked(BaseHTTPRequestHandler):
    """Answers each invocation with PARTS as HTTP chunks, 50 ms apart; a request `framed` with
    an event stream of its own."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        request = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if request == b"framed":  # a container that frames its answer itself
            body = payload_part(b"already framed")
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.amazon.eventstream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-parts")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for part in PARTS:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.flush()
            time.sleep(0.05)
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def chunked_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Chunked)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# The framing follows the answer, not the fleet's image: a SageMaker framework image runs as a
# container where the Docker Engine holds it and on the built-in runtime elsewhere (the data
# plane cannot tell which), and a plain answer is framed whichever image the fleet names.
IMAGES = ["example.com/any/container:1", FRAMEWORK_IMAGE, "greenshift/model-server:latest"]


@pytest.mark.parametrize("image", IMAGES)
def test_a_plain_stream_answer_is_framed_part_by_part(
    dp: Dataplane, chunked_server: int, image: str
) -> None:
    serve_fleet(dp, fleet_record(image), chunked_server, 1)
    http = urllib3.PoolManager()
    try:
        answer = http.request(
            "POST",
            f"{dp.url}/endpoints/Chat/invocations-response-stream",
            body=b"{}",
            headers={"Content-Type": "application/json"},
            preload_content=True,
            timeout=20,
        )
        plain = http.request("POST", f"{dp.url}/endpoints/Chat/invocations", body=b"{}")
        framed = http.request(
            "POST", f"{dp.url}/endpoints/Chat/invocations-response-stream", body=b"framed"
        )
    finally:
        http.clear()
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/vnd.amazon.eventstream"
    assert answer.headers["X-Amzn-SageMaker-Content-Type"] == "application/x-parts"
    raw = answer.data
    parser = EventStreamBuffer()
    parser.add_data(raw)
    messages = list(parser)  # checks both CRCs of every message
    assert messages, "no event-stream message"
    # Every message is exactly the built-in server's framing of its payload (one implementation,
    # greenshift/fleet/serving/eventstream.py, checked here against botocore's parser above).
    offset = 0
    for msg in messages:
        expected = payload_part(msg.payload)
        assert raw[offset : offset + len(expected)] == expected
        offset += len(expected)
    assert offset == len(raw)
    assert b"".join(m.payload for m in messages) == b"".join(PARTS)
    # Chunks 50 ms apart are framed one by one (the 40 KB one spans several buffers).
    assert [m.payload for m in messages[:3]] == PARTS[:3]
    # A plain invocation of the same fleet is not framed.
    assert plain.data == b"".join(PARTS)
    assert plain.headers["Content-Type"] == "application/x-parts"
    # A container's own event stream passes as it is (not framed twice).
    assert framed.data == payload_part(b"already framed")


# --- the example container -----------------------------------------------------------------------


@pytest.fixture
def docker_runtime(tmp_path: Path) -> Iterator[DockerRuntime]:
    home = (tmp_path / "containers").resolve()
    home.mkdir()
    rt = DockerRuntime(home)
    try:
        yield rt
    finally:
        rt.sweep(keep=())
        rt.close()
        assert remove_containers(home) == [], "a test left containers behind"


def start_container(dp: Dataplane, rt: DockerRuntime, image: str, tmp_path: Path) -> None:
    fleet = fleet_record(image)
    model_dir = tmp_path / "model"
    model_dir.mkdir(exist_ok=True)
    (model_dir / "model.json").write_text("{}")
    rt.prepare(fleet, model_dir, lambda _: None)
    spec = InstanceSpec(
        instance_id=f"{fleet.fleet_id}.0",
        fleet=fleet,
        model_dir=model_dir,
        host="127.0.0.1",
        port=free_port(),
        environment={},
        log_path=tmp_path / "instance.log",
    )
    pid = rt.start(spec)
    deadline = time.monotonic() + 30
    while not ping(spec.host, spec.port, 1.0):
        assert time.monotonic() < deadline, "the container never answered /ping"
        time.sleep(0.1)
    serve_fleet(dp, fleet, spec.port, pid)


def stream(client: Any, request: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    answer = client.invoke_endpoint_with_response_stream(
        EndpointName="Chat", ContentType="application/json", Body=json.dumps(request)
    )
    return answer, answer["Body"]


@pytest.mark.usefixtures("docker_images")
def test_a_container_streams_parts_as_they_are_produced(
    dp: Dataplane, docker_runtime: DockerRuntime, tmp_path: Path
) -> None:
    start_container(dp, docker_runtime, STREAM_IMAGE, tmp_path)
    client = runtime_client(dp.url, read_timeout=30)
    started = time.monotonic()
    answer, body = stream(client, {"parts": 10, "delay": 0.2})
    parts = [(time.monotonic() - started, e["PayloadPart"]["Bytes"]) for e in body]

    assert b"".join(p for _, p in parts).decode() == "".join(f"{i} " for i in range(10))
    assert len(parts) == 10  # one chunk, 200 ms apart, one part
    # The container needs 1.8 s for all 10: the first part came long before the last was made.
    first, last = parts[0][0], parts[-1][0]
    assert last >= 1.8
    assert first < 0.8, parts[:3]
    assert answer["ContentType"] == "text/plain"
    assert answer["InvokedProductionVariant"] == "A"
    # InvokeEndpoint of the same container: its plain chunked body, not framed.
    plain = client.invoke_endpoint(
        EndpointName="Chat", ContentType="application/json", Body=b'{"parts": 3}'
    )
    assert plain["Body"].read() == b"0 1 2 "
    assert plain["ContentType"] == "text/plain"


@pytest.mark.usefixtures("docker_images", "framework_image")
def test_a_framework_image_the_engine_holds_streams_as_a_container(
    dp: Dataplane, docker_runtime: DockerRuntime, tmp_path: Path
) -> None:
    """Where the engine holds a framework image, the agent runs it as that container
    (greenshift.fleet.images.runtime_kind), which answers plain: its parts reach boto3 framed."""
    assert runtime_kind(FRAMEWORK_IMAGE, lambda image: image == FRAMEWORK_IMAGE) == "container"
    start_container(dp, docker_runtime, FRAMEWORK_IMAGE, tmp_path)
    answer, body = stream(runtime_client(dp.url, read_timeout=30), {"parts": 3, "delay": 0.05})
    assert [e["PayloadPart"]["Bytes"] for e in body] == [b"0 ", b"1 ", b"2 "]
    assert answer["ContentType"] == "text/plain"


@pytest.mark.usefixtures("docker_images")
def test_a_container_answering_500_is_a_model_error(
    dp: Dataplane, docker_runtime: DockerRuntime, tmp_path: Path
) -> None:
    start_container(dp, docker_runtime, FAILING_IMAGE, tmp_path)
    with pytest.raises(ClientError) as info:
        stream(runtime_client(dp.url, read_timeout=30), {"parts": 3})
    error = info.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 500
    assert "this container always fails" in error["OriginalMessage"]


@pytest.mark.usefixtures("docker_images")
def test_a_container_dying_mid_stream_ends_the_stream_with_stream_broken(
    dp: Dataplane, docker_runtime: DockerRuntime, tmp_path: Path
) -> None:
    """As SageMaker does: the parts the container sent, then a ModelStreamError event of
    ErrorCode StreamBroken, which botocore's iteration raises (HAProxy cuts the stream when the
    container's side breaks; the stream relay, relay.py, ends it with that event)."""
    start_container(dp, docker_runtime, STREAM_IMAGE, tmp_path)
    _, body = stream(
        runtime_client(dp.url, read_timeout=30), {"parts": 10, "delay": 0.1, "die_at": 3}
    )
    received = []
    with pytest.raises(EventStreamError) as info:
        for event in body:
            received.append(event["PayloadPart"]["Bytes"])
    body.close()
    assert b"".join(received) == b"0 1 2 "
    assert info.value.response["Error"]["Code"] == "ModelStreamError"
    assert "broke before it ended" in info.value.response["Error"]["Message"]
