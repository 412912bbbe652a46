"""The logs package assembled from settings: the store file, the API over it, the shipper."""

from __future__ import annotations

from greenshift.logs.api import LogsApi
from greenshift.logs.shipper import LogShipper
from greenshift.logs.store import LogStore, SqliteLogStore
from greenshift.settings import Settings

STORE_FILE = "instance-logs.db"
DAY_MS = 86_400_000


def open_store(settings: Settings) -> SqliteLogStore:
    """`<home>/instance-logs.db`: a file of its own, never the registry's database."""
    return SqliteLogStore(settings.home_dir / STORE_FILE)


def logs_api(settings: Settings, store: LogStore) -> LogsApi:
    return LogsApi(store, settings.region, settings.account_id, settings.log_retention_days)


def shipper(settings: Settings, store: LogStore) -> LogShipper:
    """The shipper of this host's instances (`<home>/instances/*/server.log`)."""
    return LogShipper(
        store,
        settings.home_dir / "instances",
        interval=settings.log_ship_interval_seconds,
        retention_ms=settings.log_retention_days * DAY_MS,
        max_bytes_per_stream=settings.log_retention_bytes_per_stream,
    )
