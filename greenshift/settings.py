"""Configuration, read in one place: flags override environment variables override defaults.

Every port and path of DESIGN.md's "Interfaces that must not drift" is here, with the environment
variable that sets it (`GREENSHIFT_<FIELD>`).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from greenshift.names import DEFAULT_TASK_QUEUE


class Settings(BaseSettings):
    """Greenshift's settings. Build one with `Settings()` (environment) or `Settings(field=...)`."""

    model_config = SettingsConfigDict(env_prefix="GREENSHIFT_", extra="ignore")

    home: Path = Field(
        default=Path("~/.greenshift"), description="state: registry, logs, instances"
    )
    host: str = "127.0.0.1"
    api_port: int = 7070
    runtime_port: int = 8080
    stats_port: int = 8405
    temporal_port: int = 7233
    ui_port: int = 8233
    temporal_address: str | None = Field(
        default=None, description="an existing Temporal frontend; default 127.0.0.1:<temporal_port>"
    )
    temporal_namespace: str = "default"
    # Mutual TLS to a Temporal frontend that requires it (docs/security.md, door 1): PEM files.
    # A client certificate and its key go together; a CA alone verifies the server only.
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_ca: Path | None = Field(
        default=None, description="CA that signed the frontend's certificate; default the system's"
    )
    temporal_tls_server_name: str | None = None  # the name in the frontend's certificate
    task_queue: str = DEFAULT_TASK_QUEUE
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default a SQLite file in <home>"
    )
    region: str = "us-east-1"
    account_id: str = "000000000000"
    # Access keys for SigV4 ("AKID:SECRET,AKID2:SECRET2"); none means loopback only.
    access_keys: str | None = None
    # Quotas (SEMANTICS.md section 2, ResourceLimitExceeded).
    max_instances: int = 64
    max_endpoints: int = 32
    max_instances_per_endpoint: int = 32
    # First port handed to model instances; each instance gets the next free one.
    instance_port_base: int = 19000
    # This host's GPUs for instances ("0,1,2,3"); unset: what `nvidia-smi -L` lists, if anything.
    gpus: str | None = None
    # Where deployments read alarm states: Greenshift's own API unless set (e.g. real CloudWatch).
    cloudwatch_endpoint_url: str | None = None
    webhook_urls: str | None = None
    # Instance logs (greenshift/logs, README "Logs"): each stream keeps events for at most
    # `log_retention_days` and its newest `log_retention_bytes_per_stream` bytes; the shipper
    # reads the instances' server.log every `log_ship_interval_seconds`.
    log_retention_days: int = Field(default=30, ge=1)
    log_retention_bytes_per_stream: int = Field(default=64 * 1024 * 1024, ge=1024)
    log_ship_interval_seconds: float = Field(default=1.0, gt=0)
    # Model environments (greenshift.fleet.modelenv), shared by every home on the machine.
    env_cache: Path = Field(
        default=Path("~/.cache/greenshift/envs"), description="built model environments"
    )
    # A model environment no live instance runs from is removed once unused this long (seconds).
    env_unused_seconds: int = Field(default=14 * 24 * 3600, ge=0)
    # The most an extracted model archive may hold (greenshift.fleet.modeldata), in bytes.
    model_data_max_bytes: int = 20 * 1024**3
    # Extracted model data no fleet uses is removed once unused this long (seconds).
    model_data_unused_seconds: int = 24 * 3600
    # A deployment does not move traffic forward on alarm states older than this (a hung
    # evaluator is not "all OK"): it waits, then pauses and says why.
    alarm_stale_seconds: float = 10.0
    # `greenshift up` checks each component's health this often, and kills (to restart) one that
    # has failed its checks this long: a hung process is as gone as a dead one.
    health_check_seconds: float = Field(default=5.0, gt=0)
    unhealthy_restart_seconds: float = Field(default=20.0, gt=0)
    # Hosts (greenshift.hosts): a host whose last heartbeat is older than this is lost: its
    # instances leave rotation and are replaced on the others.
    host_lost_after_seconds: float = Field(default=5.0, gt=0)
    host_heartbeat_seconds: float = Field(default=1.0, gt=0)
    # An agent whose --address is on a network between hosts that only the data plane reaches:
    # its instances listen on that address (else only ever on loopback). Models have no SigV4 of
    # their own, so anything on that network could call them: keep it private.
    host_network_private: bool = False
    # The worker runs this machine's fleet agent (False for the extra workers of --workers N).
    worker_agent: bool = True
    # `greenshift up --workers N`: workers on the shared task queue (the first holds the agent);
    # each touches `<home>/run/<worker_name>.alive`.
    workers: int = Field(default=1, ge=1, le=64)
    worker_name: str = "worker"

    @cached_property
    def home_dir(self) -> Path:
        path = self.home.expanduser().resolve()
        path.mkdir(mode=0o700, parents=True, exist_ok=True)  # private: it holds the registry
        return path

    @property
    def registry_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home_dir / 'registry.db'}"

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def runtime_url(self) -> str:
        return f"http://{self.host}:{self.runtime_port}"

    @property
    def alarms_endpoint_url(self) -> str:
        return self.cloudwatch_endpoint_url or self.api_url

    def arn(self, kind: str, name: str) -> str:
        """`arn:aws:sagemaker:<region>:<account>:<kind>/<name lower-cased>` (SEMANTICS.md 1)."""
        return f"arn:aws:sagemaker:{self.region}:{self.account_id}:{kind}/{name.lower()}"


def parse_access_keys(value: str | None) -> dict[str, str]:
    """`settings.access_keys`: "AKID:SECRET,AKID2:SECRET2"."""
    keys: dict[str, str] = {}
    for item in (value or "").split(","):
        if item.strip():
            key, _, secret = item.strip().partition(":")
            if not key or not secret:
                raise ValueError("access_keys must look like AKID:SECRET[,AKID2:SECRET2]")
            keys[key] = secret
    return keys
