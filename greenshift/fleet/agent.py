"""The fleet agent: owns this host's model instances (greenshift.ports.Fleet).

Instances are processes running the built-in model server, detached from the worker so a worker
restart does not take the fleet down. The registry is the record: every instance has an
InstanceRecord (id `<fleet>.<index>`, port, pid, state), written before and after every change, so
a restarted agent `adopt()`s what is still running and relaunches what died. Only `InService`
instances are routed (the router controller reads the states), so every other state is "out of
rotation".

States: Launching -> InService <-> Unhealthy; any -> Stopping -> (record deleted); a launch that
never passes /ping in time -> Failed. A crashed process is relaunched under the same id (restarts
counted), on the same port when it is still free.

Threads: `scale_up` / `scale_down` run in activity threads; `supervise` runs in its own thread
(`start()` / `stop()`). One lock guards every read-modify-write of a record and the launch of a
process, and instances a foreground call is working on are left alone by the supervisor.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar

from greenshift.fleet.gpus import GpuLedger
from greenshift.fleet.images import runtime_kind
from greenshift.fleet.modeldata import ModelData, ModelDataError, source_of
from greenshift.fleet.modelenv import ModelEnvironments
from greenshift.fleet.processes import ProcessRuntime, instance_address, ping, port_is_free
from greenshift.fleet.runtime import InstanceRuntime, InstanceSpec, container_of, log_tail
from greenshift.naming import instance_id
from greenshift.ports import FleetStatus, Progress, ProvisionFailed
from greenshift.registry.api import Registry
from greenshift.registry.records import FleetRecord, InstanceRecord
from greenshift.settings import Settings
from greenshift.status import RUNNING_STATES, InstanceState

log = logging.getLogger("greenshift.fleet")


DOWNLOAD_TOO_SLOW = (
    "The model data for production variant {variant} was not ready within "
    "ModelDataDownloadTimeoutInSeconds ({seconds} s)."
)
PING_FAILED = (
    "The primary container for production variant {variant} did not pass the ping health check."
    " Please check CloudWatch logs for this endpoint."
)
LOG_TAIL_LINES = 15
FAILURE_REASON_CHARS = 1024  # DescribeEndpoint's FailureReason is at most this long

Probe = Callable[[str, int | None, float], bool]
T = TypeVar("T")


@dataclass(frozen=True)
class AgentTiming:
    """Every wait of the agent, in seconds; tests shorten them."""

    probe_timeout: float = 2.0  # one /ping (SEMANTICS.md 6)
    supervise_interval: float = 0.5  # a kill -9 must be out of rotation within 3 s
    startup_poll: float = 0.2
    rotation_timeout: float = 5.0  # wait for the router controller to drop a Stopping instance
    stop_grace: float = 30.0  # SIGTERM, then SIGKILL after this
    unhealthy_replace_after: float = 30.0  # an instance unhealthy this long is replaced
    # A process that keeps dying is relaunched at most every min(base * 2**restarts, max)
    # seconds after its last start; the first crash of a long-lived instance is relaunched at once.
    restart_backoff: float = 0.5
    restart_backoff_max: float = 30.0
    heartbeat: float = 5.0  # every long wait reports progress at least this often

    def relaunch_due(self, restarts: int, seconds_since_start: float) -> bool:
        wait = min(self.restart_backoff * 2 ** min(restarts, 16), self.restart_backoff_max)
        return seconds_since_start >= wait


class ContainerRuntime(InstanceRuntime, Protocol):
    """The Docker Engine runtime: an InstanceRuntime that can also tell which images it holds."""

    def has_image(self, image: str) -> bool:
        """The engine holds an image of exactly this name."""

    def sweep(self, keep: Iterable[str]) -> list[str]:
        """Remove this home's containers but the running ones of `keep`; returns their ids."""

    def follow_logs(self, instance_ids: Iterable[str], instances_dir: Path) -> None:
        """Resume appending adopted containers' output to their logs."""


def _now() -> datetime:
    return datetime.now(UTC)


class FleetAgent:
    """`Fleet` for this host. Build one per worker; call `adopt()` then `start()` at startup and
    `stop()` at shutdown (`stop_all()` too when the whole stack goes down)."""

    def __init__(
        self,
        registry: Registry,
        settings: Settings,
        launcher: InstanceRuntime | None = None,
        *,
        containers: Callable[[], ContainerRuntime] | None = None,
        timing: AgentTiming | None = None,
        probe: Probe = ping,
        model_data: ModelData | None = None,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.launcher: InstanceRuntime = launcher or ProcessRuntime(  # the built-in runtime
            ModelEnvironments(settings.env_cache), settings.env_unused_seconds
        )
        self._containers_factory = containers or self._docker_runtime
        self._containers: ContainerRuntime | None = None
        self._runtime_kinds: dict[str, str] = {}  # fleet id -> "process" | "container"
        self.timing = timing or AgentTiming()
        self.probe = probe
        # Instances answer on loopback only, whatever GREENSHIFT_HOST says: HAProxy is the one
        # door to them (issue 14). A host of its own loopback address (127.0.0.3) keeps it. This
        # is also the host name of their records.
        self.host = instance_address(settings.host, settings.host_network_private)
        self.instances_dir = settings.home_dir / "instances"
        self.model_data = model_data or ModelData(
            settings.home_dir / "models", max_bytes=settings.model_data_max_bytes
        )
        self._model_dirs: dict[str, Path] = {}  # fleet id -> its prepared model data
        self.gpus = GpuLedger(settings.gpus, self.instances_dir)
        self._lock = threading.RLock()
        self._busy: set[str] = set()  # instance ids a foreground call is handling
        self._fleets: dict[str, FleetRecord] = {}
        self._unhealthy_since: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="fleet-probe")

    # --- Fleet -------------------------------------------------------------------------------

    def scale_up(
        self,
        fleet: FleetRecord,
        count: int,
        progress: Progress,
        *,
        indices: Sequence[int] | None = None,
        share: bool = False,
    ) -> FleetStatus:
        """Have `count` healthy instances (absolute). Instances already running count; missing
        ones are launched at the lowest free indices (or at `indices`, reserved by placement so
        hosts launching at once never pick the same id); all are awaited within the fleet's
        startup timeout. `share`: `count` is this host's share, not the fleet's desired count."""
        self._remember(fleet, desired=None if share else count)
        deadline = time.monotonic() + fleet.startup_timeout_seconds
        with self._lock:
            live = [r for r in self._instances(fleet.fleet_id) if r.state in RUNNING_STATES]
            used = {r.index for r in live}
            missing = max(0, count - len(live))
            free = indices if indices is not None else range(count + len(used))
            indices = [i for i in free if i not in used][:missing]
            ids = [r.instance_id for r in live] + [instance_id(fleet.fleet_id, i) for i in indices]
            self._busy.update(ids)
        try:
            if indices:
                progress(f"Launching {len(indices)} instance(s).")
                self.gpus.check(fleet.variant, fleet.instance_type, len(indices), self._holders())
                model_dir = self._heartbeating(
                    "Preparing the model data",
                    progress,
                    lambda: self._model_dir(fleet),
                    limit=fleet.model_data_download_timeout_seconds,
                    too_slow=DOWNLOAD_TOO_SLOW.format(
                        variant=fleet.variant, seconds=fleet.model_data_download_timeout_seconds
                    ),
                )
                self._runtime_for(fleet).prepare(fleet, model_dir, progress)
                self._collect_model_data()
                # SageMaker's health-check clock starts with the container, not with the
                # download or the environment build (each bounded on its own).
                deadline = time.monotonic() + fleet.startup_timeout_seconds
                with self._lock:
                    self._check_still_wanted(fleet.fleet_id, count, share)
                    for index in indices:
                        self._launch(fleet, index, model_dir, restarts=None)
            self._await_healthy(fleet, ids, count, deadline, progress)
        finally:
            with self._lock:
                self._busy.difference_update(ids)
        return self.status(fleet.fleet_id)

    def _check_still_wanted(self, fleet_id: str, count: int, share: bool) -> None:
        """Before launching: the preparation (download, environment build) may take minutes,
        and a deployment aborted meanwhile cancels its provision step, but the activity hears
        of it only at its next heartbeat reply, after the rollback has retired the fleet (or
        scaled it lower). Launching then would start instances nothing routes to and nothing
        stops. Checked under the lock `scale_down` takes, so a stop is either seen here or
        sees the launched instances."""
        stored = self.registry.get_fleet(fleet_id)
        if stored is None:
            return
        if stored.retired:
            raise ProvisionFailed(
                f"fleet {fleet_id} was retired while its instances were being prepared "
                "(the deployment moved on); nothing was launched"
            )
        if not share and stored.desired_count < count:
            raise ProvisionFailed(
                f"fleet {fleet_id} was scaled to {stored.desired_count} while {count} "
                "instance(s) were being prepared (the deployment moved on); nothing was launched"
            )

    def scale_down(
        self, fleet_id: str, count: int, progress: Progress, *, share: bool = False
    ) -> FleetStatus:
        """Stop instances until `count` remain: the unhealthy first, then the highest indices.
        Out of rotation first (Stopping, confirmed by the router controller), then SIGTERM so
        in-flight requests finish, SIGKILL after the grace period; the record is then deleted."""
        with self._lock:
            current = [r for r in self._instances(fleet_id) if r.state != InstanceState.STOPPED]
            keep_order = sorted(
                current, key=lambda r: (r.state != InstanceState.IN_SERVICE, r.index)
            )
            victims = [r for r in keep_order[max(0, count) :]]
            self._busy.update(r.instance_id for r in victims)
            fleet = self._fleet(fleet_id)
            if fleet is not None:
                self._remember(fleet, desired=None if share else count)
        try:
            if victims:
                progress(f"Terminating {len(victims)} instance(s).")
                self._stop_instances(victims, progress)
        finally:
            with self._lock:
                self._busy.difference_update(r.instance_id for r in victims)
        return self.status(fleet_id)

    def status(self, fleet_id: str) -> FleetStatus:
        records = self._instances(fleet_id)
        fleet = self._fleet(fleet_id)
        states = [r.state for r in records]
        live = sum(s in RUNNING_STATES for s in states)
        return FleetStatus(
            fleet_id=fleet_id,
            desired=fleet.desired_count if fleet is not None else live,
            healthy=states.count(InstanceState.IN_SERVICE),
            launching=states.count(InstanceState.LAUNCHING),
            failed=states.count(InstanceState.FAILED),
        )

    # --- supervision -------------------------------------------------------------------------

    def start(self) -> None:
        """Run `supervise()` in a background thread."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.supervise, name="fleet-agent", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop supervising (instances keep running: they belong to the host, not the agent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def supervise(self) -> None:
        """Until `stop()`: probe every instance of this host about every
        `supervise_interval` seconds; see `tick`."""
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.tick()
            except Exception:  # the registry may be briefly unavailable; keep supervising
                log.exception("fleet supervision tick failed")
            self._stop.wait(max(0.0, self.timing.supervise_interval - (time.monotonic() - began)))

    def tick(self) -> None:
        """One round: a dead process is relaunched (out of rotation at once); a live one that
        fails /ping becomes Unhealthy, and InService again when it answers; one unhealthy for
        too long is replaced."""
        records = [r for r in self._host_instances() if r.state in RUNNING_STATES]
        with self._lock:
            records = [r for r in records if r.instance_id not in self._busy]
        alive = {r.instance_id: self._alive(r) for r in records}
        to_probe = [r for r in records if alive[r.instance_id]]
        results = list(
            self._pool.map(
                lambda r: self.probe(r.host, r.port, self.timing.probe_timeout), to_probe
            )
        )
        healthy = {r.instance_id: ok for r, ok in zip(to_probe, results, strict=True)}
        for record in records:
            with self._lock:
                if record.instance_id in self._busy:
                    continue
                self._supervise_one(
                    record, alive[record.instance_id], healthy.get(record.instance_id, False)
                )

    def _supervise_one(self, seen: InstanceRecord, alive: bool, healthy: bool) -> None:
        record = self.registry.get_instance(seen.instance_id)
        if record is None or record.state not in RUNNING_STATES or record.pid != seen.pid:
            return  # changed meanwhile (stopped, relaunched): next tick sees the new state
        if not alive:
            if not self._relaunch_due(record):
                if record.state == InstanceState.IN_SERVICE:
                    self._save(
                        record, InstanceState.UNHEALTHY, "process exited; relaunch backing off"
                    )
                return
            log.warning("instance %s (pid %s) is gone: relaunching", record.instance_id, record.pid)
            self._relaunch(record, "process exited")
            return
        if healthy:
            self._unhealthy_since.pop(record.instance_id, None)
            if record.state != InstanceState.IN_SERVICE:
                self._save(record, InstanceState.IN_SERVICE, None)
            return
        if record.state == InstanceState.IN_SERVICE:
            self._unhealthy_since[record.instance_id] = time.monotonic()
            self._save(record, InstanceState.UNHEALTHY, "/ping failed")
        elif record.state == InstanceState.UNHEALTHY:
            since = self._unhealthy_since.setdefault(record.instance_id, time.monotonic())
            if time.monotonic() - since > self.timing.unhealthy_replace_after:
                self._kill(record)
                self._relaunch(record, "unhealthy too long")

    # --- adoption and shutdown --------------------------------------------------------------

    def adopt(self) -> dict[str, int]:
        """After an agent restart: keep this host's instances whose process is still our model
        server, relaunch those that died, finish stops that were interrupted. Nothing is left
        running without a record, nor recorded without a process."""
        counts = {"adopted": 0, "relaunched": 0, "stopped": 0}
        unfinished: list[InstanceRecord] = []
        with self._lock:
            for record in self._host_instances():
                alive = self._alive(record)
                if record.state in RUNNING_STATES:
                    if alive:
                        counts["adopted"] += 1
                    elif self._relaunch(record, "relaunched after agent restart"):
                        counts["relaunched"] += 1
                elif record.state in (InstanceState.STOPPING, InstanceState.STOPPED):
                    unfinished.append(record)
                elif record.state == InstanceState.FAILED and alive:
                    self._kill(record)
        if unfinished:
            self._stop_instances(unfinished, lambda _: None, confirm=False)
            counts["stopped"] = len(unfinished)
        removed = self._adopt_containers()
        log.info("adopted instances: %s; stale containers removed: %d", counts, removed)
        return counts

    def stop_all(self, grace: float | None = None) -> None:
        """The host is shutting down (`greenshift up` exits): stop every instance gracefully and
        mark it Unhealthy ("stopped with the host"), keeping the record, so the next `adopt()`
        relaunches it and the endpoints come back as they were."""
        self.stop()
        records = [r for r in self._host_instances() if r.state in RUNNING_STATES]
        with self._lock:
            for record in records:
                self._save(record, InstanceState.UNHEALTHY, "stopped with the host")
        self._terminate(
            [r for r in records if r.pid is not None],
            grace if grace is not None else self.timing.stop_grace,
        )
        # No container outlives the host's stop; the records stay, so `adopt()` makes new ones.
        with contextlib.suppress(ProvisionFailed):
            self._container_runtime().sweep(keep=())

    def close(self) -> None:
        self.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)
        close_containers = getattr(self._containers, "close", None)
        if close_containers is not None:
            close_containers()  # the engine connection

    # --- internals ---------------------------------------------------------------------------

    def _instances(self, fleet_id: str) -> list[InstanceRecord]:
        return [r for r in self.registry.list_instances(fleet_id=fleet_id) if r.host == self.host]

    def _host_instances(self) -> list[InstanceRecord]:
        return self.registry.list_instances(host=self.host)

    def _fleet(self, fleet_id: str) -> FleetRecord | None:
        return self.registry.get_fleet(fleet_id) or self._fleets.get(fleet_id)

    def _remember(self, fleet: FleetRecord, desired: int | None) -> None:
        """Keep the fleet (a relaunch needs its model) and its desired count (None: as stored),
        read-modify-write so fields others own (e.g. `retired`) are not overwritten."""
        stored = self.registry.get_fleet(fleet.fleet_id)
        base = stored or fleet
        keep = base.desired_count if desired is None else desired
        updated = base.model_copy(update={"desired_count": keep})
        if stored != updated:
            self.registry.upsert_fleet(updated)
        self._fleets[fleet.fleet_id] = updated

    def _runtime_for(self, fleet: FleetRecord) -> InstanceRuntime:
        """The runtime of a fleet's instances, by its image (greenshift.fleet.images), decided
        once per fleet so every instance of a fleet runs the same way."""
        kind = self._runtime_kinds.get(fleet.fleet_id)
        if kind is None:
            image = str(container_of(fleet.model_spec).get("Image") or "")
            kind = runtime_kind(image, self._image_in_engine) if image else "process"
            self._runtime_kinds[fleet.fleet_id] = kind
        return self.launcher if kind == "process" else self._container_runtime()

    def _runtime_of(self, record: InstanceRecord) -> InstanceRuntime:
        fleet = self._fleet(record.fleet_id)
        return self._runtime_for(fleet) if fleet is not None else self.launcher

    def _alive(self, record: InstanceRecord) -> bool:
        return self._runtime_of(record).alive(record.pid, record.instance_id)

    def _container_runtime(self) -> ContainerRuntime:
        if self._containers is None:
            self._containers = self._containers_factory()
        return self._containers

    def _docker_runtime(self) -> ContainerRuntime:
        from greenshift.fleet.containers import DockerRuntime  # the docker client, on need only

        return DockerRuntime(self.settings.home_dir)

    def _adopt_containers(self) -> int:
        """Containers no running record of this host wants are removed (stale: the agent died
        between a record's change and the container's); the adopted ones' logs are followed
        again. No engine: nothing to adopt."""
        keep = [r.instance_id for r in self._host_instances() if r.state in RUNNING_STATES]
        try:
            runtime = self._container_runtime()
            removed = runtime.sweep(keep)
            runtime.follow_logs(keep, self.instances_dir)
        except ProvisionFailed:
            return 0
        if removed:
            log.warning("removed stale containers of instances %s", ", ".join(removed))
        return len(removed)

    def _holders(self) -> list[str]:
        """This host's instances that hold their GPUs (every one not yet stopped)."""
        return [
            r.instance_id
            for r in self._host_instances()
            if r.state in (*RUNNING_STATES, InstanceState.STOPPING)
        ]

    def _image_in_engine(self, image: str) -> bool:
        try:
            return self._container_runtime().has_image(image)
        except ProvisionFailed:
            return False  # no engine: the built-in runtime serves framework images

    def _model_dir(self, fleet: FleetRecord) -> Path:
        try:
            path = self.model_data.prepare(source_of(container_of(fleet.model_spec)))
        except ModelDataError as exc:
            raise ProvisionFailed(f"model data: {exc}") from exc
        self._model_dirs[fleet.fleet_id] = path
        return path

    def _heartbeating(
        self,
        what: str,
        progress: Progress,
        work: Callable[[], T],
        *,
        limit: float | None = None,
        too_slow: str = "",
    ) -> T:
        """Run `work` (a download, an extraction) in a thread, reporting progress on a timer
        meanwhile, so a large archive never looks like a dead worker. Past `limit` seconds the
        step fails with `too_slow` (the thread cannot be killed: it finishes in the background,
        and what it made is reused by a later attempt, as the cache is atomic)."""
        outcome: dict[str, object] = {}
        done = threading.Event()

        def run() -> None:
            try:
                outcome["value"] = work()
            except BaseException as exc:
                outcome["error"] = exc
            finally:
                done.set()

        threading.Thread(target=run, name="fleet-prepare", daemon=True).start()
        began = time.monotonic()
        while not done.wait(self.timing.heartbeat):
            if limit is not None and time.monotonic() - began >= limit:
                raise ProvisionFailed(too_slow)
            progress(f"{what} ({time.monotonic() - began:.0f} s).")
        error = outcome.get("error")
        if isinstance(error, BaseException):
            raise error
        return outcome["value"]  # type: ignore[return-value]

    def _collect_model_data(self) -> None:
        """Remove extracted model data no fleet of this host uses. Only when the agent knows
        the data of every fleet with instances here (after a restart it may not yet)."""
        fleets = {r.fleet_id for r in self._host_instances()}
        if not fleets <= set(self._model_dirs):
            return
        in_use = [self._model_dirs[f] for f in fleets]
        try:
            self.model_data.collect(in_use, self.settings.model_data_unused_seconds)
        except OSError:
            log.exception("model data collection failed")

    def _environment(self, fleet: FleetRecord, port: int, model_dir: Path) -> dict[str, str]:
        """The container's Environment plus SageMaker's runtime-independent variables. The
        runtime adds what depends on it (port, model folder, a base PATH/HOME/LANG); nothing of
        the worker's own environment is passed (SEMANTICS.md 9)."""
        container = container_of(fleet.model_spec)
        model_env = {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}
        return {
            **model_env,
            "SAGEMAKER_PROGRAM": model_env.get("SAGEMAKER_PROGRAM", "inference.py"),
            "SAGEMAKER_REGION": self.settings.region,
        }

    def _pick_port(self, preferred: int | None = None) -> int:
        """`preferred` if still free (a relaunch keeps its address), else the first free port
        from `instance_port_base` up that no instance record of this host holds."""
        taken = {r.port for r in self._host_instances() if r.port is not None}
        if preferred is not None and port_is_free(self.host, preferred):
            return preferred
        port = self.settings.instance_port_base
        while port < 65536:
            if port not in taken and port_is_free(self.host, port):
                return port
            port += 1
        raise ProvisionFailed("no free port for a model instance")

    def _launch(
        self,
        fleet: FleetRecord,
        index: int,
        model_dir: Path,
        restarts: int | None,
        port: int | None = None,
    ) -> InstanceRecord:
        """Start one instance (caller holds the lock). The record is written as Launching with
        its port before the process starts, so the port is reserved and nothing runs unrecorded
        for longer than a crash between the two writes."""
        iid = instance_id(fleet.fleet_id, index)
        previous = self.registry.get_instance(iid)
        port = self._pick_port(port)
        now = _now()
        record = InstanceRecord(
            instance_id=iid,
            fleet_id=fleet.fleet_id,
            endpoint=fleet.endpoint,
            variant=fleet.variant,
            index=index,
            host=self.host,
            port=port,
            pid=None,
            state=InstanceState.LAUNCHING,
            state_reason=None,
            restarts=restarts if restarts is not None else (previous.restarts if previous else 0),
            started_at=now,
            updated_at=now,
        )
        self.registry.upsert_instance(record)
        gpus = self.gpus.assign(iid, fleet.variant, fleet.instance_type, self._holders())
        try:
            pid = self._runtime_for(fleet).start(
                InstanceSpec(
                    instance_id=iid,
                    fleet=fleet,
                    model_dir=model_dir,
                    host=self.host,
                    port=port,
                    environment={
                        **self._environment(fleet, port, model_dir),
                        **self.gpus.environment(gpus),
                    },
                    log_path=self.instances_dir / iid / "server.log",
                    gpus=gpus,
                    private_network=self.settings.host_network_private,
                )
            )
        except ProvisionFailed as exc:  # e.g. a container that exits at start
            if restarts is None:  # the fleet's own launch: the step fails now, naming the cause
                self._save(record, InstanceState.FAILED, exc.message)
                raise
            # A relaunch: retried with the backoff, like a process that keeps crashing.
            return self._save(record, InstanceState.LAUNCHING, exc.message)
        record = record.model_copy(update={"pid": pid, "updated_at": _now()})
        self.registry.upsert_instance(record)
        log.info("launched %s pid %d port %d", iid, pid, port)
        return record

    def _relaunch(self, record: InstanceRecord, reason: str) -> bool:
        fleet = self._fleet(record.fleet_id)
        if fleet is None:
            self._save(
                record, InstanceState.FAILED, f"{reason}; fleet {record.fleet_id} is unknown"
            )
            return False
        self._save(record, InstanceState.LAUNCHING, reason)  # out of rotation at once
        try:
            self._launch(
                fleet, record.index, self._model_dir(fleet), record.restarts + 1, port=record.port
            )
        except Exception as exc:
            log.exception("relaunch of %s failed", record.instance_id)
            self._save(record, InstanceState.FAILED, f"relaunch failed: {exc}")
            return False
        return True

    def _relaunch_due(self, record: InstanceRecord) -> bool:
        started = record.started_at
        if started is None:
            return True
        if started.tzinfo is None:  # some databases hand back naive UTC
            started = started.replace(tzinfo=UTC)
        since = (_now() - started).total_seconds()
        return self.timing.relaunch_due(record.restarts, since)

    def _save(self, record: InstanceRecord, state: str, reason: str | None) -> InstanceRecord:
        return self._save_all([record], state, reason)[0]

    def _save_all(
        self, records: Sequence[InstanceRecord], state: str, reason: str | None
    ) -> list[InstanceRecord]:
        """The instances' stored records in `state`, in one write: the data plane applies one
        change for all of them."""
        updated = [
            (self.registry.get_instance(record.instance_id) or record).model_copy(
                update={"state": state, "state_reason": reason, "updated_at": _now()}
            )
            for record in records
        ]
        self.registry.upsert_instances(updated)
        return updated

    def _await_healthy(
        self, fleet: FleetRecord, ids: list[str], count: int, deadline: float, progress: Progress
    ) -> None:
        """Until `count` of `ids` answer /ping. Progress is reported when the count changes and
        on a timer (a 150 s model_fn is alive, not stuck). An instance that exits before it
        was ever healthy fails the step at once, with its log's last lines."""
        last = ""
        beat = time.monotonic()
        while True:
            healthy = 0
            answered: list[InstanceRecord] = []  # first answered /ping in this look
            for iid in ids:
                with self._lock:
                    record = self.registry.get_instance(iid)
                    if record is None or record.state not in RUNNING_STATES:
                        continue
                    if record.state == InstanceState.IN_SERVICE and self._runtime_of(record).alive(
                        record.pid, iid
                    ):
                        healthy += 1
                        continue
                    if not self._alive(record):
                        if record.state == InstanceState.LAUNCHING:
                            self._fail_launch(fleet, ids, exited=record)
                        if self._relaunch_due(record):
                            self._relaunch(record, "process exited during startup")
                        continue
                if self.probe(record.host, record.port, self.timing.probe_timeout):
                    answered.append(record)
                    healthy += 1
            if answered:  # into rotation together: one write, one change to apply
                with self._lock:
                    self._save_all(answered, InstanceState.IN_SERVICE, None)
            message = f"{healthy}/{count} instances healthy"
            if message != last or time.monotonic() - beat >= self.timing.heartbeat:
                progress(message)
                last = message
                beat = time.monotonic()
            if healthy >= count:
                return
            if time.monotonic() >= deadline:
                self._fail_launch(fleet, ids)
            time.sleep(self.timing.startup_poll)

    def _fail_launch(
        self, fleet: FleetRecord, ids: list[str], exited: InstanceRecord | None = None
    ) -> None:
        """Fail the step: SageMaker's words, then the last lines of the log of the instance that
        exited (or of the first one that never became healthy)."""
        failed = [
            r
            for r in (self.registry.get_instance(i) for i in ids)
            if r is not None and r.state != InstanceState.IN_SERVICE
        ]
        culprit = exited or (failed[0] if failed else None)
        reason = PING_FAILED.format(variant=fleet.variant)
        if culprit is not None:
            what = "exited during startup" if exited is not None else "never passed /ping"
            tail = log_tail(self.instances_dir / culprit.instance_id / "server.log", LOG_TAIL_LINES)
            head = f"{reason} Instance {culprit.instance_id} {what}; its log ends:\n"
            # FailureReason holds 1024 characters: keep the log's end, where the error is.
            room = FAILURE_REASON_CHARS - len(head)
            if tail and room > 80:
                if len(tail) > room:
                    tail = tail[-room:].split("\n", 1)[-1]
                reason = head + tail
        with self._lock:
            for record in failed:
                self._save(record, InstanceState.FAILED, reason)
        self._terminate([r for r in failed if r.pid is not None], grace=2.0)
        raise ProvisionFailed(reason)

    def _stop_instances(
        self, victims: list[InstanceRecord], progress: Progress, confirm: bool = True
    ) -> None:
        with self._lock:
            marked = [r for r in victims if r.state != InstanceState.STOPPING]
            self._save_all(marked, InstanceState.STOPPING, "scale down")
        if confirm:
            self._await_rotation(progress)
        self._terminate([r for r in victims if r.pid is not None], self.timing.stop_grace)
        for record in victims:
            self._runtime_of(record).release(record.instance_id)
            self._unhealthy_since.pop(record.instance_id, None)
        # "not found" is success
        self.registry.delete_instances([r.instance_id for r in victims])

    def _await_rotation(self, progress: Progress) -> None:
        """Wait (bounded) until the router controller has applied the generation that has our
        Stopping marks, so no new request reaches an instance we are about to stop."""
        target = self.registry.routing_generation()
        deadline = time.monotonic() + self.timing.rotation_timeout
        while self.registry.applied_generation() < target:
            if time.monotonic() >= deadline:
                log.warning(
                    "router controller did not confirm generation %d in %.0f s; stopping anyway",
                    target,
                    self.timing.rotation_timeout,
                )
                return
            time.sleep(0.05)
        progress("Instances out of rotation.")

    def _terminate(self, records: Iterable[InstanceRecord], grace: float) -> None:
        """SIGTERM all, wait for them together, SIGKILL whoever outlives the grace period."""
        pending = [r for r in records if self._alive(r)]
        for record in pending:
            assert record.pid is not None
            self._runtime_of(record).signal(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while pending and time.monotonic() < deadline:
            time.sleep(0.05)
            pending = [r for r in pending if self._alive(r)]
        for record in pending:
            assert record.pid is not None
            log.warning(
                "instance %s ignored SIGTERM for %.0f s: SIGKILL", record.instance_id, grace
            )
            self._runtime_of(record).signal(record.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while pending and time.monotonic() < deadline:  # let the kernel reap before we return
            time.sleep(0.02)
            pending = [r for r in pending if self._alive(r)]

    def _kill(self, record: InstanceRecord) -> None:
        if record.pid is not None and self._runtime_of(record).alive(
            record.pid, record.instance_id
        ):
            with contextlib.suppress(Exception):
                self._runtime_of(record).signal(record.pid, signal.SIGKILL)
