"""The control API under test: real SqlRegistry (SQLite, and PostgreSQL when available), the
app served by uvicorn on a free 127.0.0.1 port, a fake workflow starter and fake alarms.

Fixtures live here and are imported by the `test_api_*` modules (as `*_fixture`, registered
under their short names, so test parameters do not shadow the imports). `Api.finish` plays the
worker: it settles an operation in the registry the way the workflows' last activity does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from greenshift.api.app import build_app
from greenshift.api.context import ApiContext
from greenshift.ports import AlarmState
from greenshift.registry.records import VariantState
from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from greenshift.status import DeploymentOutcome, EndpointStatus
from tests.harness.api_testing import FakeStarter, ServerThread

KEY, SECRET = "AKIDGREENSHIFTTEST", "test-secret-key"
IMAGE = "greenshift/builtin"


@dataclass
class FakeAlarms:
    """ports.AlarmSource over a dict; names not in it do not exist."""

    states_by_name: dict[str, str] = field(default_factory=dict)

    def states(self, names: list[str]) -> dict[str, AlarmState]:
        return {
            n: AlarmState(name=n, state=self.states_by_name[n])
            for n in names
            if n in self.states_by_name
        }


@dataclass
class Api:
    url: str
    settings: Settings
    registry: SqlRegistry
    starter: FakeStarter
    alarms: FakeAlarms

    def client(self, service: str = "sagemaker", key: str = KEY, secret: str = SECRET) -> Any:
        session = boto3.session.Session()
        return session.client(
            service,
            endpoint_url=self.url,
            region_name=self.settings.region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"total_max_attempts": 1}, read_timeout=10, connect_timeout=5),
        )

    def post(
        self, target: str | None, body: bytes | str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        hdrs = {"Content-Type": "application/x-amz-json-1.1", **(headers or {})}
        if target is not None:
            hdrs["X-Amz-Target"] = target
        return httpx.post(self.url + "/", content=body, headers=hdrs, timeout=10)

    def finish(
        self,
        name: str,
        status: EndpointStatus = EndpointStatus.IN_SERVICE,
        outcome: DeploymentOutcome = DeploymentOutcome.SUCCEEDED,
        failure_reason: str | None = None,
        config_name: str | None = None,
    ) -> None:
        """Settle the operation in flight as a workflow would, serving `config_name` (default:
        the endpoint's config) with its variants."""
        record = self.registry.get_endpoint(name)
        assert record is not None and record.current_deployment_id is not None
        config = self.registry.get_endpoint_config(config_name or record.config_name)
        assert config is not None
        variants = [
            VariantState(
                variant=v["VariantName"],
                model_name=v["ModelName"],
                instance_type=v["InstanceType"],
                current_weight=v.get("InitialVariantWeight", 1.0),
                desired_weight=v.get("InitialVariantWeight", 1.0),
                current_instance_count=v["InitialInstanceCount"],
                desired_instance_count=v["InitialInstanceCount"],
                image=IMAGE,
            )
            for v in config.spec["ProductionVariants"]
        ]
        self.registry.finish_operation(
            name,
            record.current_deployment_id,
            status=status,
            outcome=outcome,
            config_name=config.name,
            variants=variants,
            failure_reason=failure_reason,
        )

    def remove(self, name: str) -> None:
        """The DeleteEndpoint workflow's last step."""
        record = self.registry.get_endpoint(name)
        assert record is not None and record.current_deployment_id is not None
        self.registry.delete_endpoint_record(name, record.current_deployment_id)


ApiFactory = Callable[..., Api]


@pytest.fixture(name="api_factory")
def api_factory_fixture(registry_url: str, tmp_path: Path) -> Iterator[ApiFactory]:
    """Start an API with settings overrides (e.g. quotas, access keys); stopped at teardown."""
    servers: list[ServerThread] = []
    registries: list[SqlRegistry] = []

    def make(clock: Callable[[], datetime] | None = None, **overrides: Any) -> Api:
        settings = Settings(home=tmp_path / "home", **overrides)
        registry = SqlRegistry(registry_url, arn_for=settings.arn)
        registries.append(registry)
        starter = FakeStarter()
        alarms = FakeAlarms({"latency-ok": "OK", "errors-high": "ALARM"})
        ctx = ApiContext(settings=settings, registry=registry, starter=starter, alarms=alarms)
        if clock is not None:
            ctx.clock = clock
        server = ServerThread(build_app(ctx)).__enter__()
        servers.append(server)
        return Api(server.url, settings, registry, starter, alarms)

    try:
        yield make
    finally:
        for server in servers:
            server.__exit__(None, None, None)
        for registry in registries:
            registry.close()


@pytest.fixture(name="api")
def api_fixture(api_factory: ApiFactory) -> Api:
    return api_factory()


@pytest.fixture(name="sm")
def sm_fixture(api: Api) -> Any:
    return api.client()


def make_model(sm: Any, name: str = "m1") -> str:
    arn: str = sm.create_model(
        ModelName=name,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://greenshift-test/model.tar.gz"},
        ExecutionRoleArn="arn:aws:iam::000000000000:role/greenshift",
    )["ModelArn"]
    return arn


def make_config(
    sm: Any, name: str = "c1", model: str = "m1", count: int = 2, variants: tuple[str, ...] = ("A",)
) -> str:
    arn: str = sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": v,
                "ModelName": model,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": count,
                "InitialVariantWeight": 1.0,
            }
            for v in variants
        ],
    )["EndpointConfigArn"]
    return arn


def in_service(api: Api, sm: Any, name: str = "e1", config: str = "c1") -> None:
    """An endpoint InService on `config` (model m1 / config created if missing)."""
    if api.registry.get_model("m1") is None:
        make_model(sm)
    if api.registry.get_endpoint_config(config) is None:
        make_config(sm, config)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    api.finish(name)


def snapshot(registry: SqlRegistry) -> dict[str, Any]:
    """Everything a rejected request must leave unchanged."""
    from greenshift.registry.api import ListQuery

    q = ListQuery(max_results=100)
    return {
        "models": [r.model_dump() for r in registry.list_models(q).items],
        "configs": [r.model_dump() for r in registry.list_endpoint_configs(q).items],
        "endpoints": [r.model_dump() for r in registry.list_endpoints(q).items],
        "deployments": [r.model_dump() for r in registry.list_deployments(limit=1000)],
    }
