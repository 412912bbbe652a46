"""Helpers for the data-plane tests: model instances as real processes, a registry on SQLite in
a temporary directory, HAProxy + router controller on free ports. Everything started here is
stopped by `close()`."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from greenshift.dataplane.controller import RouterController
from greenshift.dataplane.haproxy import HAProxyProcess
from greenshift.dataplane.relay import start_relays
from greenshift.registry.records import (
    EndpointRouting,
    FleetRoute,
    InstanceRecord,
    VariantRoute,
)
from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "examples" / "models"


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def _pings(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


class ModelProcess:
    """One model server process (greenshift.fleet.model_server) on a free port."""

    def __init__(self, model: str, env: dict[str, str] | None = None, port: int = 0) -> None:
        self.port = port or free_port()  # a given port: a relaunch where the old one served
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "greenshift.fleet.model_server",
                "--model-dir",
                str(MODELS / model),
                "--port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        wait_for(lambda: _pings(self.port), 20, f"model {model} on {self.port}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Dataplane:
    """Registry + HAProxy + controller for one test."""

    def __init__(self, tmp: Path, relays: bool = True) -> None:
        """`relays`: serve the data plane's stream relay here (not when the test runs the
        data-plane process, run_dataplane, which serves its own)."""
        self.settings = Settings(
            home=tmp / "home",
            runtime_port=free_port(),
            stats_port=free_port(),
            database_url=f"sqlite:///{tmp / 'registry.db'}",
        )
        self.registry = SqlRegistry(self.settings.registry_url)
        self.haproxy = HAProxyProcess(self.settings.home_dir / "dataplane")
        self.controller = RouterController(self.registry, self.haproxy, self.settings)
        self.models: list[ModelProcess] = []
        # Response streams go through the stream relay (greenshift/dataplane/relay.py).
        self._stop_relays = threading.Event()
        self._relays = (
            start_relays(self.haproxy.paths, sigv4=False, stop=self._stop_relays) if relays else []
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.runtime_port}"

    def model(self, name: str, env: dict[str, str] | None = None, port: int = 0) -> ModelProcess:
        m = ModelProcess(name, env, port)
        self.models.append(m)
        return m

    def instance(
        self,
        endpoint: str,
        variant: str,
        fleet: str,
        index: int,
        model: ModelProcess,
        state: str = "InService",
    ) -> InstanceRecord:
        now = datetime.now(UTC)
        record = InstanceRecord(
            instance_id=f"{fleet}.{index}",
            fleet_id=fleet,
            endpoint=endpoint,
            variant=variant,
            index=index,
            port=model.port,
            pid=model.proc.pid,
            state=state,
            started_at=now,
            updated_at=now,
        )
        self.registry.upsert_instance(record)
        return record

    def route(
        self,
        endpoint: str,
        variants: list[tuple[str, float, list[tuple[str, float]]]],
        strategy: str = "LEAST_OUTSTANDING_REQUESTS",
    ) -> int:
        return self.registry.set_routing(
            EndpointRouting(
                endpoint=endpoint,
                variants=[
                    VariantRoute(
                        variant=v,
                        weight=w,
                        routing_strategy=strategy,
                        fleets=[FleetRoute(fleet_id=f, share=s) for f, s in fleets],
                    )
                    for v, w, fleets in variants
                ],
            )
        )

    def close(self) -> None:
        self.haproxy.stop()
        self._stop_relays.set()
        for thread in self._relays:
            thread.join(10)
        for m in self.models:
            m.stop()
        self.registry.close()


def runtime_client(
    url: str, key: str = "test", secret: str = "test", read_timeout: int = 60
) -> Any:
    """boto3's sagemaker-runtime client of a data plane, one attempt per call (a retry by
    the client would hide what the data plane did)."""
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}, read_timeout=read_timeout),
    )
