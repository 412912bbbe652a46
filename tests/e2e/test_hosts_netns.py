"""A host beyond loopback (issue 16): the agent runs in a network namespace of its own, reached
over a veth pair at 10.231.x.2 (tests/e2e/netns.py, made and removed here), with
GREENSHIFT_HOST_NETWORK_PRIVATE so its instances listen on that address. The data plane on this
side routes to them across the veth; the agent reaches Temporal through a forwarder; nothing of
the namespace outlives the test."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenshift.hosts.store import HostStore
from greenshift.loadgen import SteadyLoad
from greenshift.registry.sql import SqlRegistry
from tests.e2e.conftest import EXAMPLES, create_config, create_model
from tests.e2e.netns import Forwarder, NetnsUnavailableError, NetworkHost
from tests.e2e.stack import Stack, processes_mentioning, running_stack
from tests.registry_records import fleet

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, NetworkHost]]:
    try:
        host = NetworkHost.make(os.getpid())
    except NetnsUnavailableError as exc:
        if os.environ.get("CI"):  # .ci/run installs iproute2 and runs as root: it must work
            pytest.fail(f"no network namespaces in CI: {exc}")
        pytest.skip(f"no network namespaces here: {exc}")
    root = tmp_path_factory.mktemp("netns-host")
    left: list[int] = []
    try:
        env = {"GREENSHIFT_WORKER_AGENT": "false", "GREENSHIFT_HOST_LOST_AFTER_SECONDS": "3"}
        with running_stack(root / "stack", extra_env=env) as stack:
            _warm_model_environment()
            port = stack.settings.temporal_port
            forwarder = Forwarder((host.outer, port), ("127.0.0.1", port)).start()
            agent = _start_agent(stack, host, root, f"{host.outer}:{port}")
            try:
                yield stack, host
            finally:
                _delete_endpoints(stack)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(agent.pid, signal.SIGTERM)
                try:
                    agent.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(agent.pid, signal.SIGKILL)
                    agent.wait(timeout=10)
                forwarder.stop()
    finally:
        left = host.remove()
    assert left == [], f"processes left in namespace {host.name}: {left}"
    assert processes_mentioning(str(root)) == []


def _warm_model_environment() -> None:
    """The namespace has no route to PyPI (a real host would, or a shared cache): build the echo
    model's environment on this side first, in the cache the agent shares."""
    from greenshift.fleet.modelenv import ModelEnvironments
    from greenshift.fleet.processes import requirements_of

    cache = Path(os.environ["GREENSHIFT_ENV_CACHE"])
    record = fleet().model_copy(update={"model_spec": {"Image": "greenshift/model-server"}})
    requirements = requirements_of(record, EXAMPLES / "echo-v1")
    ModelEnvironments(cache).ensure(requirements, time.monotonic() + 240, lambda _: None)


def _start_agent(
    stack: Stack, host: NetworkHost, root: Path, temporal: str
) -> subprocess.Popen[bytes]:
    env = {
        **stack.env(),
        "GREENSHIFT_HOME": str(root / "host-netns"),
        "GREENSHIFT_DATABASE_URL": stack.settings.registry_url,
        "GREENSHIFT_TEMPORAL_ADDRESS": temporal,
        "GREENSHIFT_HOST_NETWORK_PRIVATE": "true",
    }
    with (root / "agent-netns.log").open("ab") as log:
        return subprocess.Popen(
            host.command([sys.executable, "-m", "greenshift", "agent", "--address", host.address]),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _delete_endpoints(stack: Stack) -> None:
    sm = stack.client("sagemaker")
    for endpoint in sm.list_endpoints()["Endpoints"]:
        with contextlib.suppress(Exception):
            sm.delete_endpoint(EndpointName=endpoint["EndpointName"])
            sm.get_waiter("endpoint_deleted").wait(
                EndpointName=endpoint["EndpointName"], WaiterConfig={"Delay": 1, "MaxAttempts": 90}
            )


def test_an_agent_in_another_network_namespace_holds_and_serves_the_endpoint(
    remote: tuple[Stack, NetworkHost],
) -> None:
    stack, host = remote
    store = HostStore(stack.settings.registry_url)
    registry = SqlRegistry(stack.settings.registry_url)
    try:
        deadline = time.monotonic() + 60
        while [h.address for h in store.list()] != [host.address]:
            assert time.monotonic() < deadline, "the agent in the namespace did not register"
            time.sleep(0.2)
        sm = stack.client("sagemaker")
        create_model(sm, "ns-v1", "echo-v1")
        create_config(sm, "ns-c1", "ns-v1", count=2)
        sm.create_endpoint(EndpointName="netns", EndpointConfigName="ns-c1")
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName="netns", WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
        instances = [r for r in registry.list_instances(endpoint="netns") if r.state == "InService"]
        assert [r.host for r in instances] == [host.address] * 2
        for record in instances:
            # Reachable from this namespace across the veth, at the address recorded ...
            with urllib.request.urlopen(f"http://{record.host}:{record.port}/ping", timeout=5) as r:
                assert r.status == 200
            # ... and not on this side's loopback: the instance is not a process of this network.
            with pytest.raises(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{record.port}/ping", timeout=2)

        load = SteadyLoad(stack.settings.runtime_url, "netns", rate=20, duration=5).start()
        time.sleep(5.5)
        report = load.stop()
        assert report.sent >= 80
        assert report.failed == [], report.failed[:5]
        assert set(report.by_version()) == {"v1"}
        answer = stack.client("sagemaker-runtime").invoke_endpoint(
            EndpointName="netns", Body=json.dumps({"x": 1})
        )
        assert json.loads(answer["Body"].read())["version"] == "v1"
    finally:
        registry.close()
        store.close()
