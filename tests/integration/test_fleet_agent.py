"""The fleet agent on real model-server processes on 127.0.0.1, with a SQLite registry."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from greenshift.fleet.agent import AgentTiming, FleetAgent
from greenshift.fleet.modeldata import ModelData, ModelSource
from greenshift.fleet.processes import ProcessLauncher
from greenshift.fleet.runtime import InstanceSpec
from greenshift.naming import fleet_id
from greenshift.ports import Fleet, ProvisionFailed
from greenshift.registry.records import FleetRecord, InstanceRecord
from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from tests.ports import free_port as _free_port

MODELS = Path(__file__).resolve().parents[2] / "examples" / "models"
FAST = AgentTiming(supervise_interval=0.3, rotation_timeout=0.5, stop_grace=5.0, startup_poll=0.1)


class RecordingLauncher(ProcessLauncher):
    """The real launcher, remembering every pid it started so the test can always clean up."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[int] = []

    def start(self, spec: InstanceSpec) -> int:
        pid = super().start(spec)
        self.started.append(pid)
        return pid


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if condition():
            return time.monotonic() - began
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


class Host:
    """A registry, settings and every launcher made in one test; kills what they started."""

    def __init__(self, tmp_path: Path) -> None:
        self.url = f"sqlite:///{tmp_path / 'registry.db'}"
        self.registry = SqlRegistry(self.url)
        self.settings = Settings(home=tmp_path / "home", instance_port_base=_free_port())
        self.launchers: list[RecordingLauncher] = []
        self.agents: list[FleetAgent] = []

    def agent(self, registry: SqlRegistry | None = None) -> FleetAgent:
        launcher = RecordingLauncher()
        self.launchers.append(launcher)
        agent = FleetAgent(registry or self.registry, self.settings, launcher, timing=FAST)
        self.agents.append(agent)
        return agent

    def fleet(
        self,
        model: str | Path,
        *,
        variant: str = "AllTraffic",
        timeout: int = 30,
        env: dict[str, str] | None = None,
        deployment: str = "dep-00000001",
    ) -> FleetRecord:
        path = model if isinstance(model, Path) else MODELS / model
        container: dict[str, object] = {
            "Image": "greenshift/model-server",
            "ModelDataUrl": f"file://{path}",
        }
        if env:
            container["Environment"] = env
        return FleetRecord(
            fleet_id=fleet_id("ep", deployment, variant),
            endpoint="ep",
            deployment_id=deployment,
            variant=variant,
            config_name="cfg",
            model_name=path.name,
            instance_type="ml.m5.large",
            model_spec={"PrimaryContainer": container},
            startup_timeout_seconds=timeout,
            created_at=datetime.now(UTC),
        )

    def slow_agent(self, models: Path, timing: AgentTiming = FAST) -> FleetAgent:
        """An agent whose model data takes its time (SlowModelData, in `models`)."""
        launcher = RecordingLauncher()
        self.launchers.append(launcher)
        agent = FleetAgent(
            self.registry,
            self.settings,
            launcher,
            timing=timing,
            model_data=SlowModelData(models),
        )
        self.agents.append(agent)
        return agent

    def instances(self, fleet: str) -> list[InstanceRecord]:
        return self.registry.list_instances(fleet_id=fleet)

    def cleanup(self) -> None:
        for agent in self.agents:
            agent.close()
        for launcher in self.launchers:
            for pid in launcher.started:
                for kill in (os.killpg, os.kill):
                    try:
                        kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            for child in launcher._children.values():
                child.wait(timeout=10)
        self.registry.close()


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    made = Host(tmp_path)
    yield made
    made.cleanup()


def _invoke(record: InstanceRecord) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{record.port}/invocations", json={"q": 1}, timeout=5)


def test_scale_up_three_healthy_detached_instances(host: Host) -> None:
    agent: Fleet = host.agent()  # mypy checks the agent against the Fleet interface
    fleet = host.fleet("echo-v1")
    messages: list[str] = []
    status = agent.scale_up(fleet, 3, messages.append)
    assert (status.healthy, status.desired, status.launching, status.failed) == (3, 3, 0, 0)
    assert messages[0] == "Launching 3 instance(s)." and messages[-1] == "3/3 instances healthy"
    records = host.instances(fleet.fleet_id)
    assert [r.instance_id for r in records] == [f"{fleet.fleet_id}.{i}" for i in range(3)]
    assert {r.state for r in records} == {"InService"}
    assert len({r.port for r in records}) == 3
    for record in records:
        assert record.pid is not None
        assert os.getsid(record.pid) == record.pid  # own session: outlives the worker
        assert _invoke(record).json() == {"version": "v1", "input": {"q": 1}}
        log = host.settings.home_dir / "instances" / record.instance_id / "server.log"
        assert "listening on" in log.read_text()


def test_retried_scale_up_launches_nothing_twice(host: Host) -> None:
    agent = host.agent()
    fleet = host.fleet("echo-v2")
    agent.scale_up(fleet, 2, lambda _: None)
    first = {r.instance_id: r.pid for r in host.instances(fleet.fleet_id)}
    agent.scale_up(fleet, 2, lambda _: None)  # the retried activity
    assert {r.instance_id: r.pid for r in host.instances(fleet.fleet_id)} == first
    assert len(host.launchers[0].started) == 2
    agent.scale_up(fleet, 3, lambda _: None)  # absolute: one more
    assert len(host.launchers[0].started) == 3
    assert agent.status(fleet.fleet_id).healthy == 3


def test_never_ready_fails_the_launch_with_sagemakers_reason(host: Host) -> None:
    agent = host.agent()
    fleet = host.fleet("never-ready", variant="Canary", timeout=2)
    began = time.monotonic()
    with pytest.raises(ProvisionFailed) as raised:
        agent.scale_up(fleet, 2, lambda _: None)
    assert time.monotonic() - began < 10
    reason = str(raised.value)
    assert reason.startswith(
        "The primary container for production variant Canary did not pass the ping health check."
        " Please check CloudWatch logs for this endpoint. Instance ep.Canary."
    )
    assert "never passed /ping; its log ends:\n" in reason and "listening on 127.0.0.1:" in reason
    records = host.instances(fleet.fleet_id)
    assert [r.state for r in records] == ["Failed", "Failed"]
    assert all(_gone(pid) for pid in host.launchers[0].started)
    assert agent.status(fleet.fleet_id).failed == 2


def test_a_model_that_exits_at_start_fails_at_once_with_its_log(host: Host, tmp_path: Path) -> None:
    """SageMaker fails the step when the container exits during startup: no relaunch loop, no
    waiting out the 60 s limit, and the reason quotes the instance's last log lines."""
    model = tmp_path / "crashing"
    (model / "code").mkdir(parents=True)
    (model / "code" / "inference.py").write_text(
        "def model_fn(model_dir):\n    raise RuntimeError('weights missing')\n"
    )
    agent = host.agent()
    began = time.monotonic()
    with pytest.raises(ProvisionFailed) as raised:
        agent.scale_up(host.fleet(model, timeout=60), 1, lambda _: None)
    assert time.monotonic() - began < 15
    assert len(host.launchers[0].started) == 1
    reason = str(raised.value)
    assert "did not pass the ping health check" in reason and "exited during startup" in reason
    assert "RuntimeError: weights missing" in reason


def test_killed_instance_is_out_of_rotation_within_3s_and_replaced(host: Host) -> None:
    agent = host.agent()
    fleet = host.fleet("echo-v1")
    agent.scale_up(fleet, 2, lambda _: None)
    agent.start()
    victim = host.instances(fleet.fleet_id)[0]
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)

    def out_of_rotation() -> bool:
        record = host.registry.get_instance(victim.instance_id)
        return record is not None and (record.state != "InService" or record.pid != victim.pid)

    assert _wait(out_of_rotation, 3.0, "killed instance out of rotation") < 3.0

    def replaced() -> bool:
        record = host.registry.get_instance(victim.instance_id)
        return record is not None and record.state == "InService" and record.pid != victim.pid

    _wait(replaced, 15.0, "killed instance replaced")
    record = host.registry.get_instance(victim.instance_id)
    assert record is not None and record.restarts == 1
    assert _invoke(record).json()["version"] == "v1"


def test_failing_ping_is_unhealthy_then_in_service_again(host: Host) -> None:
    agent = host.agent()
    fleet = host.fleet("echo-v1")
    agent.scale_up(fleet, 1, lambda _: None)
    agent.start()
    record = host.instances(fleet.fleet_id)[0]
    assert record.pid is not None
    os.kill(record.pid, signal.SIGSTOP)  # alive but not answering: /ping times out
    try:

        def state() -> str:
            current = host.registry.get_instance(record.instance_id)
            return current.state if current is not None else "gone"

        _wait(lambda: state() == "Unhealthy", 6.0, "unanswered /ping marked Unhealthy")
    finally:
        os.kill(record.pid, signal.SIGCONT)
    _wait(lambda: state() == "InService", 6.0, "recovered instance back in service")
    current = host.registry.get_instance(record.instance_id)
    assert current is not None and current.pid == record.pid and current.restarts == 0


def test_scale_down_waits_for_the_router_and_drains_in_flight_requests(host: Host) -> None:
    agent = host.agent()
    fleet = host.fleet("slow", env={"SLOW_MS": "1500"})
    agent.scale_up(fleet, 2, lambda _: None)
    records = host.instances(fleet.fleet_id)
    victim = records[1]

    # A stand-in router controller: reports the generation applied, noting what it saw.
    seen: list[str] = []
    stop = threading.Event()

    def controller() -> None:
        while not stop.is_set():
            generation = host.registry.routing_generation()
            current = host.registry.get_instance(victim.instance_id)
            if current is not None:
                seen.append(current.state)
            host.registry.mark_generation_applied(generation)
            time.sleep(0.05)

    router = threading.Thread(target=controller)
    router.start()
    answers: list[httpx.Response] = []
    client = threading.Thread(target=lambda: answers.append(_invoke(victim)))
    try:
        client.start()
        time.sleep(0.5)  # the request is in the handler
        status = agent.scale_down(fleet.fleet_id, 1, lambda _: None)
        client.join(timeout=10)
    finally:
        stop.set()
        router.join(timeout=5)
    assert [a.status_code for a in answers] == [200]
    assert "Stopping" in seen
    assert status.healthy == 1 and status.desired == 1
    assert [r.instance_id for r in host.instances(fleet.fleet_id)] == [records[0].instance_id]
    assert victim.pid is not None and _gone(victim.pid)
    # Unknown fleets and fleets already small enough are a success.
    assert agent.scale_down("nope", 0, lambda _: None).healthy == 0
    assert agent.scale_down(fleet.fleet_id, 5, lambda _: None).healthy == 1


def test_a_new_agent_adopts_live_instances_and_relaunches_dead_ones(host: Host) -> None:
    first = host.agent()
    fleet = host.fleet("echo-v1")
    first.scale_up(fleet, 3, lambda _: None)
    first.close()  # the worker goes away; its instances stay
    before = {r.instance_id: r.pid for r in host.instances(fleet.fleet_id)}
    dead = host.instances(fleet.fleet_id)[2]
    assert dead.pid is not None
    os.kill(dead.pid, signal.SIGKILL)
    _wait(lambda: _gone(dead.pid or 0), 5.0, "killed")

    second = host.agent(SqlRegistry(host.url))
    assert second.adopt() == {"adopted": 2, "relaunched": 1, "stopped": 0}
    second.start()

    def all_healthy() -> bool:
        return second.status(fleet.fleet_id).healthy == 3

    _wait(all_healthy, 15.0, "relaunched instance healthy")
    after = {r.instance_id: r.pid for r in host.instances(fleet.fleet_id)}
    assert {k: v for k, v in after.items() if k != dead.instance_id} == {
        k: v for k, v in before.items() if k != dead.instance_id
    }
    assert after[dead.instance_id] != dead.pid
    assert len(host.launchers[1].started) == 1  # nothing else was launched


def test_stop_all_then_adopt_brings_the_fleet_back(host: Host) -> None:
    agent = host.agent()
    fleet = host.fleet("echo-v2")
    agent.scale_up(fleet, 2, lambda _: None)
    pids = [r.pid for r in host.instances(fleet.fleet_id)]
    agent.stop_all()
    assert all(_gone(pid or 0) for pid in pids)
    assert {r.state for r in host.instances(fleet.fleet_id)} == {"Unhealthy"}
    again = host.agent()
    assert again.adopt()["relaunched"] == 2
    again.start()
    _wait(lambda: again.status(fleet.fleet_id).healthy == 2, 15.0, "fleet back after restart")


def test_a_process_started_but_never_recorded_is_not_left_running(host: Host) -> None:
    """The worker was SIGKILLed between starting an instance and recording its pid (found by
    the chaos suite): the relaunch must not leave the unrecorded process running forever."""
    first = host.agent()
    fleet = host.fleet("echo-v1")
    first.scale_up(fleet, 1, lambda _: None)
    first.close()
    record = host.instances(fleet.fleet_id)[0]
    unrecorded = record.pid
    assert unrecorded is not None
    host.registry.upsert_instance(record.model_copy(update={"pid": None, "state": "Launching"}))

    second = host.agent(SqlRegistry(host.url))
    assert second.adopt()["relaunched"] == 1
    _wait(lambda: _gone(unrecorded), 5.0, "the unrecorded process killed")
    relaunched = host.instances(fleet.fleet_id)[0]
    assert relaunched.pid not in (None, unrecorded)


def test_a_slow_model_fn_heartbeats_on_a_timer_while_nothing_changes(
    host: Host, tmp_path: Path
) -> None:
    """The health wait reports on a timer, not only when the count changes: a model_fn that
    takes long is alive, and the activity's heartbeat timeout must never fire on it."""
    model = tmp_path / "slowload"
    (model / "code").mkdir(parents=True)
    (model / "code" / "inference.py").write_text(
        "import time\n\ndef model_fn(model_dir):\n    time.sleep(2.5)\n    return 1\n"
    )
    launcher = RecordingLauncher()
    host.launchers.append(launcher)
    agent = FleetAgent(host.registry, host.settings, launcher, timing=replace(FAST, heartbeat=0.3))
    host.agents.append(agent)
    beats: list[tuple[float, str]] = []
    agent.scale_up(host.fleet(model), 1, lambda m: beats.append((time.monotonic(), m)))
    waiting = [t for t, m in beats if m == "0/1 instances healthy"]
    assert len(waiting) >= 5, beats
    assert max(b - a for a, b in itertools.pairwise(waiting)) < 1.0
    assert beats[-1][1] == "1/1 instances healthy"


def _listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses with a socket listening on `port` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_instances_listen_on_loopback_only_whatever_the_host_setting(
    host: Host, tmp_path: Path
) -> None:
    """GREENSHIFT_HOST=0.0.0.0 opens the API and the data plane wider, never a model instance:
    HAProxy stays the only way to a model (issue 14)."""
    wide = Settings(home=tmp_path / "wide", host="0.0.0.0", instance_port_base=_free_port())
    launcher = RecordingLauncher()
    host.launchers.append(launcher)
    agent = FleetAgent(host.registry, wide, launcher, timing=FAST)
    host.agents.append(agent)
    fleet = host.fleet("echo-v1")
    agent.scale_up(fleet, 1, lambda _: None)
    [record] = host.instances(fleet.fleet_id)
    assert record.host == "127.0.0.1" and record.port is not None
    assert _listening_addresses(record.port) == {"127.0.0.1"}
    assert _invoke(record).json()["version"] == "v1"


class SlowModelData(ModelData):
    """Real model data preparation that first takes its time, like a large download."""

    def prepare(self, source: ModelSource) -> Path:
        time.sleep(1.5)
        return super().prepare(source)


def test_preparing_the_model_data_heartbeats_on_a_timer(host: Host, tmp_path: Path) -> None:
    agent = host.slow_agent(tmp_path / "models", replace(FAST, heartbeat=0.3))
    beats: list[str] = []
    agent.scale_up(host.fleet("echo-v1"), 1, beats.append)
    assert len([b for b in beats if b.startswith("Preparing the model data (")]) >= 3, beats


def test_model_data_slower_than_its_download_timeout_fails_the_launch(
    host: Host, tmp_path: Path
) -> None:
    """ModelDataDownloadTimeoutInSeconds bounds the data preparation on its own: past it the
    step fails, naming the limit, and no instance was started. (The API keeps the value within
    AWS's 60-3600 s; the record takes any, so the test can use one second.)"""
    agent = host.slow_agent(tmp_path / "models", replace(FAST, heartbeat=0.2))
    launcher = host.launchers[-1]
    fleet = host.fleet("echo-v1").model_copy(update={"model_data_download_timeout_seconds": 1})
    began = time.monotonic()
    with pytest.raises(ProvisionFailed) as failure:
        agent.scale_up(fleet, 1, lambda _: None)
    assert time.monotonic() - began < 1.5  # SlowModelData alone takes 1.5 s
    assert "ModelDataDownloadTimeoutInSeconds (1 s)" in failure.value.message
    assert "production variant AllTraffic" in failure.value.message
    assert launcher.started == []


@pytest.mark.parametrize(("desired", "said"), [(0, "was retired"), (1, "was scaled to 1")])
def test_a_fleet_stopped_while_its_model_data_is_prepared_launches_nothing(
    host: Host, tmp_path: Path, desired: int, said: str
) -> None:
    """An abort during a long preparation: the workflow cancels the provision activity and rolls
    back at once, but the activity learns of the cancel only at its next heartbeat reply. The
    rollback retires the fleet (or, in a rolling rollback, scales it lower) meanwhile; the
    preparation, once over, must not launch instances for it: they would serve nothing and
    outlive the deployment."""
    agent = host.slow_agent(tmp_path / "models")
    launcher = host.launchers[-1]
    fleet = host.fleet("echo-v1")
    host.registry.upsert_fleet(fleet.model_copy(update={"desired_count": 2}))
    outcome: list[BaseException | None] = []

    def provision() -> None:  # the provision activity that has not heard of its cancel yet
        try:
            agent.scale_up(fleet, 2, lambda _: None)
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    zombie = threading.Thread(target=provision)
    zombie.start()
    time.sleep(0.3)  # inside SlowModelData's 1.5 s
    # the rollback's terminate step (activities/fleet.py, FleetActivities._scale_down)
    stored = host.registry.get_fleet(fleet.fleet_id)
    assert stored is not None
    host.registry.upsert_fleet(
        stored.model_copy(update={"desired_count": desired, "retired": desired == 0})
    )
    agent.scale_down(fleet.fleet_id, desired, lambda _: None)
    zombie.join(timeout=30)
    assert not zombie.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], ProvisionFailed), outcome
    assert said in outcome[0].message and "nothing was launched" in outcome[0].message
    assert launcher.started == []
    assert host.instances(fleet.fleet_id) == []
