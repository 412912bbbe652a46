"""InvokeEndpointWithResponseStream through the data plane: boto3's event-stream parser against
HAProxy and real built-in model servers running the `streamer` example model."""

from __future__ import annotations

import http.client
import json
import threading
import time
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError

from tests.integration.dataplane_support import Dataplane, runtime_client

pytestmark = pytest.mark.timeout(120)


def runtime(dp: Dataplane) -> Any:
    return runtime_client(dp.url, read_timeout=30)


def stream(client: Any, request: dict[str, Any], **kwargs: Any) -> tuple[dict[str, Any], Any]:
    answer = client.invoke_endpoint_with_response_stream(
        EndpointName="Chat", ContentType="application/json", Body=json.dumps(request), **kwargs
    )
    return answer, answer["Body"]


def expected(version: str, parts: int) -> str:
    return "".join(f"{version}:{i} " for i in range(parts))


def one_fleet(dp: Dataplane, env: dict[str, str] | None = None) -> None:
    dp.instance("Chat", "A", "Chat.A.aaaa", 0, dp.model("streamer", env))
    dp.route("Chat", [("A", 1.0, [("Chat.A.aaaa", 1.0)])])
    dp.controller.sync_once()


def test_parts_arrive_incrementally_and_add_up_to_the_answer(dp: Dataplane) -> None:
    one_fleet(dp)
    client = runtime(dp)
    started = time.monotonic()
    answer, body = stream(client, {"parts": 20, "delay": 0.1}, CustomAttributes="trace=1")
    parts: list[tuple[float, bytes]] = []
    for event in body:
        parts.append((time.monotonic() - started, event["PayloadPart"]["Bytes"]))

    assert len(parts) == 20
    assert b"".join(p for _, p in parts).decode() == expected("v1", 20)
    # The model needs 1.9 s for all 20: the first part came long before the last was produced.
    first, last = parts[0][0], parts[-1][0]
    assert last >= 1.9
    assert first < 0.6, parts[:3]
    assert answer["InvokedProductionVariant"] == "A"
    assert answer["ContentType"] == "text/plain"
    # InvokeEndpoint of the same model: the parts joined into one body.
    plain = client.invoke_endpoint(
        EndpointName="Chat", ContentType="application/json", Body=b'{"parts": 3, "delay": 0}'
    )
    assert plain["Body"].read().decode() == expected("v1", 3)


def test_a_model_error_mid_stream_is_the_event_botocore_raises(dp: Dataplane) -> None:
    one_fleet(dp)
    client = runtime(dp)
    _, body = stream(client, {"parts": 10, "delay": 0.02, "fail_at": 4})
    received = []
    with pytest.raises(EventStreamError) as info:
        for event in body:
            received.append(event["PayloadPart"]["Bytes"])
    body.close()
    assert b"".join(received).decode() == expected("v1", 4)
    assert info.value.response["Error"]["Code"] == "ModelStreamError"
    assert "failed at part 4" in info.value.response["Error"]["Message"]


def test_an_instance_killed_mid_stream_ends_the_stream_with_stream_broken(dp: Dataplane) -> None:
    """SageMaker ends a stream its model's side broke with a ModelStreamError event of
    ErrorCode StreamBroken; the stream relay (greenshift/dataplane/relay.py) sees HAProxy cut
    the stream and adds that event after the last whole part, so the client gets the parts
    sent and then the error botocore raises, never a torn body."""
    one_fleet(dp)
    model = dp.models[0]
    _, body = stream(runtime(dp), {"parts": 50, "delay": 0.1})
    received = []
    with pytest.raises(EventStreamError) as info:
        for event in body:
            received.append(event["PayloadPart"]["Bytes"])
            if len(received) == 3:
                model.proc.kill()
    body.close()
    assert 3 <= len(received) < 50
    assert b"".join(received).decode() == expected("v1", len(received))
    error = info.value.response["Error"]
    assert error["Code"] == "ModelStreamError"
    assert "broke before it ended" in error["Message"]


def test_a_broken_stream_ends_with_whole_events_and_error_code_stream_broken(
    dp: Dataplane,
) -> None:
    """The same on the wire (botocore keeps no ErrorCode): whole events, each with valid CRCs
    (EventStreamBuffer checks them), then the exception event with ErrorCode StreamBroken, then
    the chunked body's proper end."""
    one_fleet(dp)
    model = dp.models[0]
    conn = http.client.HTTPConnection("127.0.0.1", dp.settings.runtime_port, timeout=30)
    conn.request(
        "POST",
        "/endpoints/Chat/invocations-response-stream",
        body=json.dumps({"parts": 50, "delay": 0.1}),
        headers={"Content-Type": "application/json"},
    )
    answer = conn.getresponse()
    assert answer.status == 200
    events = EventStreamBuffer()
    messages = []
    while chunk := answer.read1(65536):
        events.add_data(chunk)
        messages += list(events)
        if len(messages) == 2 and model.proc.poll() is None:
            model.proc.kill()
    conn.close()
    parts = [m for m in messages if m.headers[":message-type"] == "event"]
    assert 2 <= len(parts) < 50
    assert [m.headers[":event-type"] for m in parts] == ["PayloadPart"] * len(parts)
    last = messages[-1]
    assert len(messages) == len(parts) + 1
    assert last.headers[":message-type"] == "exception"
    assert last.headers[":exception-type"] == "ModelStreamError"
    assert json.loads(last.payload)["ErrorCode"] == "StreamBroken"


def test_an_error_before_the_first_part_is_a_model_error(dp: Dataplane) -> None:
    one_fleet(dp)
    client = runtime(dp)
    with pytest.raises(ClientError) as info:
        stream(client, {"parts": 10, "fail_at": 0})
    error = info.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 500
    with pytest.raises(ClientError) as missing:
        client.invoke_endpoint_with_response_stream(EndpointName="Nope", Body=b"{}")
    assert missing.value.response["Error"]["Code"] == "ValidationError"


def test_a_canary_shift_under_streaming_load_cuts_no_stream(dp: Dataplane) -> None:
    """Blue (v1) serves; green (v2) gets 10 %, then 100 %; blue's instance is stopped while its
    streams run (it drains). Every stream started completes, whole, from one fleet."""
    blue = dp.model("streamer", {"STREAMER_VERSION": "v1"})
    green = dp.model("streamer", {"STREAMER_VERSION": "v2"})
    dp.instance("Chat", "A", "Chat.A.blue", 0, blue)
    dp.instance("Chat", "A", "Chat.A.green", 0, green)
    dp.route("Chat", [("A", 1.0, [("Chat.A.blue", 1.0), ("Chat.A.green", 0.0)])])
    dp.controller.sync_once()
    stop = threading.Event()
    results: list[tuple[str, str]] = []  # (outcome, text)
    lock = threading.Lock()

    def client_loop() -> None:
        client = runtime(dp)
        while not stop.is_set():
            try:
                _, body = stream(client, {"parts": 10, "delay": 0.05})
                text = b"".join(e["PayloadPart"]["Bytes"] for e in body).decode()
                outcome = "ok"
            except Exception as exc:  # every failure is counted, none is retried
                text, outcome = repr(exc), "failed"
            with lock:
                results.append((outcome, text))

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        dp.route("Chat", [("A", 1.0, [("Chat.A.blue", 0.9), ("Chat.A.green", 0.1)])])
        dp.controller.sync_once()
        time.sleep(2.0)
        dp.route("Chat", [("A", 1.0, [("Chat.A.green", 1.0)])])
        dp.controller.sync_once()
        # Retire blue while it may still stream: SIGTERM drains, the controller keeps the
        # server in maintenance until its connections end.
        blue.stop()
        dp.controller.sync_once()
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads)
    failed = [text for outcome, text in results if outcome != "ok"]
    assert failed == []
    texts = [text for _, text in results]
    assert {expected("v1", 10), expected("v2", 10)} == set(texts)
    assert len(texts) >= 30
