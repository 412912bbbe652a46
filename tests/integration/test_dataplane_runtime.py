"""The data plane as the SageMaker runtime: boto3's sagemaker-runtime client through HAProxy and
the router controller, with real model-server processes and the SQLite registry."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from greenshift.dataplane.controller import RouterController
from greenshift.dataplane.haproxy import HAProxyProcess
from tests.integration.dataplane_support import Dataplane, runtime_client, wait_for

pytestmark = pytest.mark.timeout(120)


def runtime(dp: Dataplane) -> Any:
    return runtime_client(dp.url)


def invoke(client: Any, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    answer = client.invoke_endpoint(
        ContentType="application/json", Body=json.dumps({"x": 1}), **kwargs
    )
    return answer["InvokedProductionVariant"], json.loads(answer["Body"].read())


def error_of(client: Any, **kwargs: Any) -> ClientError:
    with pytest.raises(ClientError) as info:
        client.invoke_endpoint(ContentType="application/json", **{"Body": b"{}", **kwargs})
    return info.value


def test_invoke_returns_the_model_answer_and_the_variant(dp: Dataplane) -> None:
    dp.instance("Shop", "A", "Shop.A.aaaa", 0, dp.model("echo-v1"))
    dp.instance("Shop", "B", "Shop.B.bbbb", 0, dp.model("echo-v2"))
    dp.route("Shop", [("A", 1.0, [("Shop.A.aaaa", 1.0)]), ("B", 0.0, [("Shop.B.bbbb", 1.0)])])
    dp.controller.sync_once()
    client = runtime(dp)

    variant, body = invoke(client, EndpointName="Shop")
    assert (variant, body) == ("A", {"version": "v1", "input": {"x": 1}})
    # The target variant overrides the weights.
    assert invoke(client, EndpointName="Shop", TargetVariant="B")[0] == "B"
    assert invoke(client, EndpointName="Shop", TargetVariant="B")[1]["version"] == "v2"


def test_runtime_errors_reach_boto3_with_their_codes(dp: Dataplane) -> None:
    dp.instance("Shop", "A", "Shop.A.aaaa", 0, dp.model("faulty"))
    dp.instance("Down", "A", "Down.A.aaaa", 0, dp.model("echo-v1"), state="Unhealthy")
    dp.route("Shop", [("A", 1.0, [("Shop.A.aaaa", 1.0)])])
    dp.route("Down", [("A", 1.0, [("Down.A.aaaa", 1.0)])])
    dp.controller.sync_once()
    client = runtime(dp)

    err = error_of(client, EndpointName="Nope")
    assert err.response["Error"]["Code"] == "ValidationError"
    assert err.response["Error"]["Message"] == "Endpoint Nope of account 000000000000 not found."
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    err = error_of(client, EndpointName="Shop")
    assert err.response["Error"]["Code"] == "ModelError"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert err.response["OriginalStatusCode"] == 500
    assert "faulty model" in err.response["OriginalMessage"]
    headers = err.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-invoked-production-variant"] == "A"

    err = error_of(client, EndpointName="Shop", TargetVariant="Z")
    assert err.response["Error"]["Code"] == "ValidationError"

    err = error_of(client, EndpointName="Down")
    assert err.response["Error"]["Code"] == "ServiceUnavailable"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 503

    err = error_of(client, EndpointName="Shop", Body=b"x" * (6_291_456 + 1))
    assert err.response["Error"]["Code"] == "ValidationError"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_instance_state_changes_apply_without_reload(dp: Dataplane) -> None:
    m1, m2 = dp.model("echo-v1"), dp.model("echo-v2")
    dp.instance("Shop", "A", "Shop.A.blue", 0, m1)
    dp.instance("Shop", "A", "Shop.A.green", 0, m2, state="Launching")
    dp.route("Shop", [("A", 1.0, [("Shop.A.blue", 1.0), ("Shop.A.green", 0.0)])])
    dp.controller.sync_once()
    reloads = dp.controller.reloads
    client = runtime(dp)
    assert {invoke(client, EndpointName="Shop")[1]["version"] for _ in range(10)} == {"v1"}

    version = dp.route("Shop", [("A", 1.0, [("Shop.A.blue", 0.0), ("Shop.A.green", 1.0)])])
    dp.instance("Shop", "A", "Shop.A.green", 0, m2)
    assert dp.controller.sync_once()
    assert dp.registry.get_routing("Shop").applied_version == version  # type: ignore[union-attr]
    assert dp.registry.applied_generation() == dp.registry.routing_generation()
    assert {invoke(client, EndpointName="Shop")[1]["version"] for _ in range(10)} == {"v2"}

    # A new instance of a fleet already routed is added through the runtime API.
    dp.instance("Shop", "A", "Shop.A.green", 1, dp.model("echo-v2"))
    dp.instance("Shop", "A", "Shop.A.blue", 0, m1, state="Stopping")
    dp.controller.sync_once()
    names = {(s.backend, s.name) for s in dp.haproxy.runtime.servers()}
    assert ("f.Shop.A.green", "Shop.A.green.1") in names
    assert dp.controller.reloads == reloads
    assert {invoke(client, EndpointName="Shop")[1]["version"] for _ in range(10)} == {"v2"}


def test_killed_haproxy_is_restarted_with_its_routing(dp: Dataplane) -> None:
    dp.instance("Shop", "A", "Shop.A.aaaa", 0, dp.model("echo-v1"))
    dp.route("Shop", [("A", 1.0, [("Shop.A.aaaa", 1.0)])])
    dp.controller.sync_once()
    pid = dp.haproxy.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not dp.haproxy.alive(), 5, "HAProxy to die")

    assert dp.controller.sync_once()
    assert dp.controller.restarts == 1
    assert invoke(runtime(dp), EndpointName="Shop")[0] == "A"


def test_a_new_controller_rebuilds_everything_from_the_registry(dp: Dataplane) -> None:
    dp.instance("Shop", "A", "Shop.A.aaaa", 0, dp.model("echo-v1"))
    dp.instance("Cart", "B", "Cart.B.bbbb", 0, dp.model("echo-v2"))
    dp.route("Shop", [("A", 1.0, [("Shop.A.aaaa", 1.0)])])
    dp.route("Cart", [("B", 1.0, [("Cart.B.bbbb", 1.0)])])
    dp.controller.sync_once()
    dp.haproxy.stop()

    # A fresh process pair with nothing but the registry (its files wiped).
    for f in dp.haproxy.paths.root.iterdir():
        f.unlink()
    dp.haproxy = HAProxyProcess(dp.haproxy.paths.root)
    dp.controller = RouterController(dp.registry, dp.haproxy, dp.settings)
    dp.controller.sync_once()
    client = runtime(dp)
    assert invoke(client, EndpointName="Shop") == ("A", {"version": "v1", "input": {"x": 1}})
    assert invoke(client, EndpointName="Cart") == ("B", {"version": "v2", "input": {"x": 1}})


def test_a_chunked_body_is_refused_because_its_size_cannot_be_checked(dp: Dataplane) -> None:
    import http.client

    dp.instance("Shop", "A", "Shop.A.aaaa", 0, dp.model("echo-v1"))
    dp.route("Shop", [("A", 1.0, [("Shop.A.aaaa", 1.0)])])
    dp.controller.sync_once()
    host, port = dp.url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    # 7 MB in chunks: without the rule it streamed past the 6 MB limit to the model.
    chunks = (b"a" * 65536 for _ in range(7_000_000 // 65536 + 1))
    try:
        conn.request(
            "POST",
            "/endpoints/Shop/invocations",
            body=chunks,
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
    except (BrokenPipeError, ConnectionResetError):
        pass  # HAProxy may answer and close before it read the whole body
    answer = conn.getresponse()
    assert answer.status == 411
    assert answer.getheader("x-amzn-ErrorType") == "ValidationError"
    assert b"Content-Length" in answer.read()
    conn.close()


def test_after_a_reload_a_kept_alive_connection_gets_the_new_routing(dp: Dataplane) -> None:
    """A reload leaves the old worker one more answer per idle keep-alive connection
    (`idle-close-on-response`); that answer must come from the new routing: a client that was
    just told an endpoint is InService must reach it on the connection it already holds."""
    dp.instance("Shop", "A", "Shop.A.aaaa", 0, dp.model("echo-v1"))
    dp.route("Shop", [("A", 1.0, [("Shop.A.aaaa", 1.0)])])
    dp.controller.sync_once()
    client = runtime(dp)  # one pooled keep-alive connection, opened to the first worker
    assert invoke(client, EndpointName="Shop")[1]["version"] == "v1"

    # A new endpoint (new backends: a reload), then a canary's end: Shop moves to a new fleet
    # and its old instance is gone (another reload, the old fleet's backend removed).
    dp.instance("Cart", "B", "Cart.B.bbbb", 0, dp.model("echo-v2"))
    dp.route("Cart", [("B", 1.0, [("Cart.B.bbbb", 1.0)])])
    reloads = dp.controller.reloads
    assert dp.controller.sync_once()
    assert dp.controller.reloads == reloads + 1
    assert invoke(client, EndpointName="Cart")[1]["version"] == "v2"

    green = dp.model("echo-v2")
    dp.instance("Shop", "A", "Shop.A.green", 0, green)
    dp.route("Shop", [("A", 1.0, [("Shop.A.green", 1.0)])])
    assert dp.controller.sync_once()
    assert dp.controller.reloads == reloads + 2
    dp.models[0].stop()
    for _ in range(3):  # the first on the old worker's last connection, then the new worker's
        assert invoke(client, EndpointName="Shop")[1]["version"] == "v2"

    # A model's error passes the old worker as the successor mapped it, not mapped twice.
    dp.instance("Bad", "A", "Bad.A.aaaa", 0, dp.model("faulty"))
    dp.route("Bad", [("A", 1.0, [("Bad.A.aaaa", 1.0)])])
    assert dp.controller.sync_once()
    assert dp.controller.reloads == reloads + 3
    err = error_of(client, EndpointName="Bad")
    assert err.response["Error"]["Code"] == "ModelError"
    assert err.response["OriginalStatusCode"] == 500
    assert "faulty model" in err.response["OriginalMessage"]


def test_an_answer_under_way_during_a_reload_is_mapped_by_the_worker_that_routed_it(
    dp: Dataplane,
) -> None:
    """`stopping` turns true under a request the old worker already routed: its answer must be
    handled as it was routed (a model's 500 still becomes the ModelError 424), not as one
    handed over (config.handover_rules: the decision is kept in txn.handover)."""
    dp.instance("Slow", "A", "Slow.A.aaaa", 0, dp.model("slow", {"SLOW_MS": "1500"}))
    dp.route("Slow", [("A", 1.0, [("Slow.A.aaaa", 1.0)])])
    dp.controller.sync_once()
    client = runtime(dp)
    outcome: list[ClientError] = []

    def fail_slowly() -> None:
        outcome.append(error_of(client, EndpointName="Slow", Body=b'{"fail": true}'))

    caller = threading.Thread(target=fail_slowly)
    caller.start()
    time.sleep(0.5)  # the request is at the model now, 1 s before its answer
    dp.instance("Cart", "B", "Cart.B.bbbb", 0, dp.model("echo-v2"))
    dp.route("Cart", [("B", 1.0, [("Cart.B.bbbb", 1.0)])])
    reloads = dp.controller.reloads
    assert dp.controller.sync_once()
    assert dp.controller.reloads == reloads + 1
    caller.join(10)
    assert not caller.is_alive()
    [err] = outcome
    # Once, as routed: an unmapped 500 would have been retried by the client, on the new worker.
    assert err.response["ResponseMetadata"]["RetryAttempts"] == 0
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert err.response["Error"]["Code"] == "ModelError"
    assert err.response["OriginalStatusCode"] == 500
    assert "failed as asked" in err.response["OriginalMessage"]
