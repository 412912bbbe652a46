"""EventBridge-shaped events (pure), webhook delivery (retries, drop-oldest, never blocking)
and the registry event source."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx

from greenshift.events.model import (
    DEPLOYMENT_STATE_CHANGE,
    ENDPOINT_STATE_CHANGE,
    deployment_state_event,
    endpoint_state_event,
)
from greenshift.events.webhook import WebhookPublisher, parse_urls
from greenshift.registry.records import DeploymentEvent, EndpointRecord
from greenshift.settings import Settings
from greenshift.status import EndpointStatus

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
S = Settings(region="eu-west-1", account_id="123456789012")


def _record(
    status: EndpointStatus = EndpointStatus.IN_SERVICE, at: datetime = T0
) -> EndpointRecord:
    return EndpointRecord(
        name="e1",
        arn=S.arn("endpoint", "e1"),
        status=status,
        config_name="c1",
        config_snapshot={},
        created_at=T0,
        last_modified=at,
    )


def test_endpoint_state_event_shape_and_stable_id() -> None:
    event = endpoint_state_event(_record(), S)
    assert event["source"] == "aws.sagemaker"
    assert event["detail-type"] == ENDPOINT_STATE_CHANGE
    assert (event["account"], event["region"]) == ("123456789012", "eu-west-1")
    assert event["resources"] == [S.arn("endpoint", "e1")]
    assert event["time"] == "2026-01-02T03:04:05Z"
    assert event["detail"]["EndpointStatus"] == "InService"
    assert endpoint_state_event(_record(), S)["id"] == event["id"]
    assert endpoint_state_event(_record(EndpointStatus.UPDATING), S)["id"] != event["id"]
    later = _record(at=T0 + timedelta(seconds=1))
    assert endpoint_state_event(later, S)["id"] != event["id"]


def test_deployment_event_carries_the_step_and_a_stable_id() -> None:
    step = DeploymentEvent(
        seq=7,
        deployment_id="d1",
        endpoint="e1",
        at=T0,
        type="Paused",
        message="Paused",
        actor="ann",
        key="d1/paused/1",
    )
    event = deployment_state_event(step, _record(EndpointStatus.UPDATING), S)
    assert event["detail-type"] == DEPLOYMENT_STATE_CHANGE
    assert event["detail"]["EndpointStatus"] == "Updating"
    assert event["detail"]["Deployment"]["Actor"] == "ann"
    assert event["id"] == deployment_state_event(step, None, S)["id"]
    other = step.model_copy(update={"key": "d1/resumed/1"})
    assert deployment_state_event(other, None, S)["id"] != event["id"]


def test_parse_urls() -> None:
    assert parse_urls(" http://a/x , ,http://b ") == ["http://a/x", "http://b"]
    assert parse_urls(None) == []


def test_delivery_retries_until_the_webhook_accepts() -> None:
    attempts: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(json.loads(request.content))
        assert request.headers["X-Greenshift-Event-Id"] == "ev1"
        return httpx.Response(503 if len(attempts) < 3 else 200)

    publisher = WebhookPublisher(
        ["http://hook/"], transport=httpx.MockTransport(handler), backoff_seconds=0.01
    )
    try:
        publisher.publish({"id": "ev1"})
        assert publisher.flush(5)
        deadline = time.monotonic() + 5
        while publisher.delivered < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (len(attempts), publisher.delivered, publisher.failed) == (3, 1, 0)
    finally:
        publisher.close()


def test_a_dead_webhook_never_blocks_and_drops_the_oldest() -> None:
    release = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        release.wait(5)  # a webhook that hangs
        return httpx.Response(500)

    publisher = WebhookPublisher(
        ["http://dead/"],
        transport=httpx.MockTransport(handler),
        max_queue=5,
        max_attempts=1,
        backoff_seconds=0.01,
    )
    try:
        started = time.monotonic()
        for i in range(50):
            publisher.publish({"id": f"ev{i}"})
        assert time.monotonic() - started < 0.5  # publishing never waits for the webhook
        assert publisher.pending() <= 5
        assert publisher.dropped >= 44
    finally:
        release.set()
        publisher.close(drain_seconds=0)


def test_a_client_error_is_not_retried() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(404)

    publisher = WebhookPublisher(["http://hook/"], transport=httpx.MockTransport(handler))
    try:
        publisher.publish({"id": "x"})
        assert publisher.flush(5)
        deadline = time.monotonic() + 5
        while publisher.failed < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (len(calls), publisher.failed) == (1, 1)
    finally:
        publisher.close()
