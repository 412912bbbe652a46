"""One chaos trial: an UpdateEndpoint of one strategy under steady traffic, one fault at a chosen
moment, then the checks of `invariants` once everything has settled. The faults: a component
killed (SIGKILL), a component hung (SIGSTOP: the stack must notice and replace it, it is
continued only once the trial is over) or the endpoint's workflow terminated with the real
`temporal` CLI (the reconciler must settle the endpoint).

The rig drives the stack the way its users do (boto3 against the control API, HTTP against the
runtime) and reads the registry directly only to observe: the control API may be the component
just killed.
"""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from greenshift import naming
from greenshift.dataplane.desired import haproxy_id
from greenshift.dataplane.runtime import RuntimeApi
from greenshift.loadgen import SteadyLoad
from greenshift.registry.api import Registry
from greenshift.settings import Settings
from greenshift.supervisor.status_report import component_health
from tests.harness.chaos import killers
from tests.harness.chaos.invariants import SETTLED, Snapshot, collect, violations
from tests.harness.chaos.watch import ShareWatch, held_on_stale, moved_on_stale, new_share

STRATEGIES = ("ALL_AT_ONCE", "CANARY", "LINEAR", "ROLLING", "FAULTY")
VARIANT = "AllTraffic"
BAKE = 3  # WaitIntervalInSeconds of every strategy: short, but long enough to kill mid-bake
# Seconds after UpdateEndpoint within which a random kill lands: about a deployment's length.
KILL_WINDOW = {"ALL_AT_ONCE": 7.0, "CANARY": 10.0, "LINEAR": 10.0, "ROLLING": 12.0, "FAULTY": 5.0}
FAULTS = ("kill", "stop", "terminate")


def deployment_config(strategy: str, alarm: str | None = None) -> dict[str, Any]:
    """The DeploymentConfig of a trial; FAULTY is a LINEAR update guarded by `alarm`."""
    if strategy == "ROLLING":
        config: dict[str, Any] = {
            "RollingUpdatePolicy": {
                "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1},
                "WaitIntervalInSeconds": BAKE,
            }
        }
    else:
        routing: dict[str, Any] = {
            "Type": "LINEAR" if strategy == "FAULTY" else strategy,
            "WaitIntervalInSeconds": BAKE * 2 if strategy == "FAULTY" else BAKE,
        }
        if strategy == "CANARY":
            routing["CanarySize"] = {"Type": "INSTANCE_COUNT", "Value": 1}
        if strategy in ("LINEAR", "FAULTY"):
            routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": 50}
        config = {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": routing,
                "TerminationWaitInSeconds": 1,
            }
        }
    if alarm:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": alarm}]}
    return config


@dataclass
class TrialResult:
    index: int
    strategy: str
    component: str
    fault: str = "kill"  # kill (SIGKILL) | stop (SIGSTOP) | terminate (the workflow)
    kill_at: float = 0.0  # seconds after UpdateEndpoint returned
    phase_at_kill: str = ""  # the endpoint status (and deployment phase) when the kill landed
    killed: list[int] = field(default_factory=list)
    outcome: str = ""  # updated | rolled back | stuck | <other status>
    expected: str = ""
    seconds: float = 0.0
    rate: float = 0.0  # the steady traffic's requests/s
    load_seconds: float = 0.0  # how long that traffic ran
    sent: int = 0
    retries: int = 0
    model_errors: int = 0
    failed: int = 0  # failed requests the model did not cause
    failures: list[str] = field(default_factory=list)  # a sample
    violations: list[str] = field(default_factory=list)
    terminated: str = ""  # what `temporal workflow terminate` said
    share_at_fault: float = 0.0  # the new fleet's share of the traffic when the fault landed
    # A hung component: seconds after the stop until it was gone (killed by the supervisor or
    # the fleet agent); None while it was never replaced.
    replaced_after: float | None = None
    held_samples: int = 0  # samples with the new fleet serving on stale alarms (metrics hung)
    # A hung instance: seconds after the stop until HAProxy no longer routed to it (None:
    # never), and the failed requests sent after that (none may be).
    out_of_rotation_after: float | None = None
    failed_after_rotation: int = 0
    abort: dict[str, Any] = field(default_factory=dict)  # AbortDeployment's answer, if sent
    # (t, the new fleet's share, the hung process still hung) at every change; failed reads.
    share_trace: list[tuple[float, float, bool]] = field(default_factory=list)
    watch_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome == self.expected and not self.failed and not self.violations

    @property
    def kept_pace(self) -> bool:
        """The traffic really flowed: at least a second's worth, and at least half the requests
        its pace asks for over the time it ran (the load is open loop: a stalled sender, not a
        slow stack, is what falls behind). A trial an abort settles at once may be 2 s long."""
        return self.sent >= max(self.rate, 0.5 * self.rate * self.load_seconds)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


class ChaosRig:
    """One endpoint on one running stack, updated back and forth between echo-v1 and echo-v2."""

    def __init__(
        self,
        settings: Settings,
        sm: Any,
        cw: Any,
        registry: Registry,
        models: str,
        endpoint: str = "chaos",
        count: int = 2,
        rate: float = 20.0,
        say: Any = print,
        containers: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        self.settings = settings
        self.sm, self.cw, self.registry = sm, cw, registry
        self.models = models.rstrip("/")
        self.endpoint = endpoint
        self.count = count
        self.rate = rate
        self.say = say
        self.model = "echo-v1"
        # Models served by a container instead: model -> (image, model data folder).
        self.containers = dict(containers or {})

    # --- set-up ---------------------------------------------------------------------------------
    def setup(self, timeout: float = 120.0) -> None:
        for model in ("echo-v1", "echo-v2", "faulty"):
            self.sm.create_model(
                ModelName=f"chaos-{model}",
                PrimaryContainer={
                    "Image": self.containers.get(model, ("greenshift/model-server", ""))[0],
                    "ModelDataUrl": "file://"
                    + (self.containers.get(model, ("", ""))[1] or f"{self.models}/{model}"),
                },
            )
        self._create_config("chaos-start", "echo-v1")
        self.sm.create_endpoint(EndpointName=self.endpoint, EndpointConfigName="chaos-start")
        self._await_settled(timeout)
        self._await_consistent("chaos-start", timeout)

    def _create_config(self, name: str, model: str) -> None:
        self.sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": VARIANT,
                    "ModelName": f"chaos-{model}",
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": self.count,
                    "InitialVariantWeight": 1.0,
                }
            ],
        )

    def _alarm(self, name: str, config: str) -> None:
        self.cw.put_metric_alarm(
            AlarmName=name,
            Namespace="AWS/SageMaker",
            MetricName="Invocation5XXErrors",
            Dimensions=[
                {"Name": "EndpointName", "Value": self.endpoint},
                {"Name": "VariantName", "Value": VARIANT},
                {"Name": "EndpointConfigName", "Value": config},
            ],
            Statistic="Sum",
            Period=10,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="notBreaching",
        )

    # --- one trial ------------------------------------------------------------------------------
    def trial(
        self,
        index: int,
        strategy: str,
        component: str,
        rng: random.Random,
        kill_at: float | None = None,
        settle_timeout: float = 180.0,
        fault: str = "kill",
        at_phase: str | None = None,
        nth: int = 1,
        abort: Any = None,
    ) -> TrialResult:
        """Deploy, fault `component` `kill_at` seconds after UpdateEndpoint (random in the
        strategy's window if None; then, with `at_phase`, once the endpoint's status/phase
        starting with it begins for the `nth` time), wait until settled, check.
        `abort(endpoint)`: called right after the fault (AbortDeployment), its answer kept."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        result = TrialResult(index, strategy, component, fault)
        begun = time.monotonic()
        self.await_healthy(90.0)
        old = self._current_config()
        new = f"chaos-t{index}"
        model = "echo-v2" if self.model == "echo-v1" else "echo-v1"
        if strategy == "FAULTY":
            model = "faulty"
        self._create_config(new, model)
        alarm = None
        if strategy == "FAULTY":
            alarm = f"chaos-5xx-t{index}"
            self._alarm(alarm, new)
            # Judged once before the deployment starts: never evaluated reads as stale, which a
            # hung evaluator would then hold before any traffic moved (another trial).
            self._await_evaluated(alarm, 15.0)
        # A terminated workflow is settled by rolling back, whatever it was doing.
        back = strategy == "FAULTY" or fault == "terminate"
        result.expected = "rolled back" if back else "updated"
        expected_config = old if back else new

        load = SteadyLoad(
            self.settings.runtime_url,
            self.endpoint,
            rate=self.rate,
            duration=settle_timeout + 120,
            connect_retries=4,  # 1.5 s of backoff: within botocore standard mode's 3 s
        ).start()
        stopped: dict[int, list[str]] = {}
        watch: ShareWatch | None = None
        out_at: float | None = None  # when a hung instance left HAProxy's rotation
        hung_at = 0.0  # seconds after UpdateEndpoint when the SIGSTOP landed
        try:
            self.sm.update_endpoint(
                EndpointName=self.endpoint,
                EndpointConfigName=new,
                DeploymentConfig=deployment_config(strategy, alarm),
            )
            updated_at = time.monotonic()
            watch = ShareWatch(self.registry, self.endpoint, old, since=updated_at).start()
            result.kill_at = (
                kill_at if kill_at is not None else rng.uniform(0.3, KILL_WINDOW[strategy])
            )
            time.sleep(max(0.0, updated_at + result.kill_at - time.monotonic()))
            if at_phase is not None:
                self._await_phase(at_phase, nth, 60.0)
            result.phase_at_kill = self._phase()
            result.share_at_fault = round(new_share(self.registry, self.endpoint, old), 3)
            result.kill_at = round(time.monotonic() - updated_at, 2)
            if fault == "terminate":
                result.terminated = killers.terminate_workflow(
                    self.settings, naming.workflow_id(self.endpoint), f"chaos trial {index}"
                )
            else:
                pids = self._targets(component, old, new, rng)
                if fault == "stop":
                    stopped = killers.hang(pids)
                    watch.stopped = stopped
                    hung_at = time.monotonic() - updated_at
                    result.killed = list(stopped)
                    if component in killers.INSTANCE_KILLS:
                        out_at = self._await_out_of_rotation(list(stopped), 20.0)
                        if out_at is not None:
                            result.out_of_rotation_after = round(out_at - updated_at - hung_at, 2)
                else:
                    result.killed = killers.kill(pids)
            if abort is not None:
                result.abort = abort(self.endpoint)

            status = self._await_settled(settle_timeout)
            current = self._current_config()
            if status not in SETTLED:
                result.outcome = "stuck"
            elif status != "InService":
                result.outcome = status
            else:
                result.outcome = {new: "updated", old: "rolled back"}.get(current, current)
            result.violations = self._await_consistent(expected_config, 60.0)
            if stopped:
                result.replaced_after = self._await_replaced(stopped, updated_at, result, 60.0)
                if result.replaced_after is None:
                    hung = killers.still_hung(stopped)
                    result.violations.append(f"hung processes never replaced: {hung}")
            sick = self.await_healthy(60.0)
            if sick:
                result.violations.append(f"components not healthy after the trial: {sick}")
            time.sleep(1.0)  # traffic keeps flowing over the settled state for a moment
        finally:
            if watch is not None:
                watch.stop()
            killers.release(stopped)  # nothing stays stopped after a trial, whatever happened
            report = load.stop()
            result.load_seconds = round(time.monotonic() - load.started_at, 1)
        if watch is not None:
            result.share_trace = _changes(watch.samples)
            result.watch_errors = watch.errors[:3]
            if result.replaced_after is not None:  # to the sample (0.25 s), not to the wait
                gone = [x.at for x in watch.samples if x.at > hung_at and not x.hung]
                if gone:
                    result.replaced_after = round(gone[0] - hung_at, 1)
        if watch is not None and component == "metrics" and fault == "stop":
            stale = self.settings.alarm_stale_seconds
            result.violations += moved_on_stale(watch.samples, hung_at, stale)
            result.held_samples = held_on_stale(watch.samples, hung_at, stale)
        if result.outcome == "updated":
            self.model = model
        result.sent = report.sent
        result.rate = self.rate
        result.retries = report.retries
        bad = report.failed_not_by_model()
        result.model_errors = len(report.failed) - len(bad)
        if strategy != "FAULTY":  # only the faulty model may fail requests
            bad = report.failed
        result.failed = len(bad)
        result.failures = [
            f"t+{a.at:.2f}s status {a.status} {a.error_type} after {a.retries} retries"
            for a in bad[:5]
        ]
        if out_at is not None:
            result.failed_after_rotation = sum(1 for a in bad if load.started_at + a.at > out_at)
        result.seconds = round(time.monotonic() - begun, 1)
        return result

    # --- the fault ------------------------------------------------------------------------------
    def _targets(self, component: str, old: str, new: str, rng: random.Random) -> list[int]:
        """The pids to kill or stop; for an instance, waits (bounded) for a target to exist."""
        deadline = time.monotonic() + 15.0
        while True:
            if component == "haproxy":
                pids = killers.haproxy_pids(self.settings)
            elif component in killers.SUPERVISED:
                pid = killers.supervised_pid(self.settings, component)
                pids = [pid] if pid else []
            elif component in killers.INSTANCE_KILLS:
                config = old if component == "old-instance" else new
                candidates = killers.instance_pids(self.registry, self.endpoint, config)
                pids = [rng.choice(candidates)] if candidates else []
            else:
                raise ValueError(f"unknown component {component!r}")
            if pids or time.monotonic() > deadline:
                return pids
            time.sleep(0.1)

    def _await_out_of_rotation(self, pids: list[int], timeout: float) -> float | None:
        """The monotonic time when HAProxy stopped routing to the instances of `pids` (in
        maintenance, or weight 0, by the router controller), None after `timeout`."""
        ids = {
            haproxy_id(i.instance_id)
            for i in self.registry.list_instances(endpoint=self.endpoint)
            if i.pid in pids
        }
        admin = RuntimeApi(self.settings.home_dir / "dataplane" / "admin.sock", timeout=2.0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                routed = {s.name for s in admin.servers() if not s.admin_maint and s.weight > 0}
                if not ids & routed:
                    return time.monotonic()
            time.sleep(0.1)
        return None

    def _await_replaced(
        self, stopped: dict[int, list[str]], since: float, result: TrialResult, timeout: float
    ) -> float | None:
        """Seconds after the stop until no stopped process is left hung (the supervisor or the
        agent killed it), or None after `timeout`."""
        deadline = time.monotonic() + timeout
        while killers.still_hung(stopped):
            if time.monotonic() > deadline:
                return None
            time.sleep(0.25)
        return round(time.monotonic() - since - result.kill_at, 1)

    # --- observation ----------------------------------------------------------------------------
    def _current_config(self) -> str:
        record = self.registry.get_endpoint(self.endpoint)
        return record.config_name if record else ""

    def _status(self) -> str:
        record = self.registry.get_endpoint(self.endpoint)
        return str(getattr(record.status, "value", record.status)) if record else "missing"

    def _phase(self) -> str:
        record = self.registry.get_endpoint(self.endpoint)
        if record is None:
            return "missing"
        status = str(getattr(record.status, "value", record.status))
        phase = record.pending.phase if record.pending else None
        return f"{status}/{phase}" if phase else status

    def _await_evaluated(self, alarm: str, timeout: float) -> None:
        """Until the local evaluator has judged `alarm` once (bounded)."""
        from greenshift.metrics.store import MetricStore

        store = MetricStore(self.settings.registry_url)
        try:
            deadline = time.monotonic() + timeout
            while not store.alarms.evaluated_at([alarm]) and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            store.engine.dispose()

    def _await_phase(self, prefix: str, nth: int, timeout: float) -> str:
        """Until the endpoint enters a status/phase starting with `prefix` for the `nth` time
        (bounded; the phases last seconds, the look is every 50 ms); returns the last seen."""
        deadline = time.monotonic() + timeout
        entered, inside = 0, False
        phase = self._phase()
        while time.monotonic() < deadline:
            now_inside = phase.startswith(prefix)
            if now_inside and not inside:
                entered += 1
                if entered >= nth:
                    break
            inside = now_inside
            time.sleep(0.05)
            phase = self._phase()
        return phase

    def _await_settled(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        status = self._status()
        while status not in SETTLED and time.monotonic() < deadline:
            time.sleep(0.5)
            status = self._status()
        return status

    def snapshot(self, expected_config: str) -> Snapshot:
        return collect(self.settings, self.registry, self.endpoint, expected_config, self.count)

    def _await_consistent(self, expected_config: str, timeout: float) -> list[str]:
        """Violations that outlived `timeout` (the fleet agent and the router controller get
        the time to replace a killed instance and re-apply routing)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                found = violations(self.snapshot(expected_config))
            except OSError as exc:  # HAProxy's socket while it restarts
                found = [f"cannot read the data plane: {exc}"]
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(1.0)

    def await_healthy(self, timeout: float) -> list[str]:
        """Wait until every supervised component and HAProxy answer; returns the ones that
        never did."""
        deadline = time.monotonic() + timeout
        admin = RuntimeApi(self.settings.home_dir / "dataplane" / "admin.sock", timeout=2.0)
        while True:
            sick = [n for n, h in component_health(self.settings).items() if not h["healthy"]]
            if not admin.ping():
                sick.append("haproxy")
            if not sick or time.monotonic() > deadline:
                return sick
            time.sleep(0.5)


def _changes(samples: list[Any]) -> list[tuple[float, float, bool]]:
    """The samples where the share or the hung state changed (a short trace for the report)."""
    trace: list[tuple[float, float, bool]] = []
    for s in samples:
        if not trace or (round(s.share, 3), s.hung) != (trace[-1][1], trace[-1][2]):
            trace.append((s.at, round(s.share, 3), s.hung))
    return trace
