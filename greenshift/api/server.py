"""`serve_api(settings)`: build the dependencies and run the control API under uvicorn.

Security at start: with access keys configured every request must carry a valid SigV4
signature; without keys the API serves only on a loopback address and says so, and asked to
listen anywhere else it refuses to start (exit code 2).
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from typing import Any

import uvicorn

from greenshift.api.alarms import LocalAlarmSource
from greenshift.api.app import build_app
from greenshift.api.context import ApiContext
from greenshift.api.workflows import TemporalStarter
from greenshift.events.source import RegistryEventSource
from greenshift.events.webhook import WebhookPublisher, parse_urls
from greenshift.ports import AlarmSource
from greenshift.settings import Settings, parse_access_keys

log = logging.getLogger("greenshift.api")

EXIT_INSECURE = 2


class InsecureBindError(Exception):
    """Asked to listen beyond loopback with no access keys configured."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def security_notice(settings: Settings) -> str:
    """What the API says at start about authentication; raises InsecureBindError when it must not
    start at all."""
    keys = parse_access_keys(settings.access_keys)
    if keys:
        return f"SigV4 authentication on: {len(keys)} access key(s) configured."
    if not is_loopback(settings.host):
        raise InsecureBindError(
            f"Refusing to listen on {settings.host}:{settings.api_port} without access keys: "
            "anyone who can reach it could deploy code. Set GREENSHIFT_ACCESS_KEYS="
            "AKID:SECRET (SigV4 is then required), or listen on 127.0.0.1."
        )
    return (
        f"No access keys configured: authentication is off, so the API listens on "
        f"{settings.host} (loopback) only. Set GREENSHIFT_ACCESS_KEYS to serve other hosts."
    )


def make_context(settings: Settings) -> ApiContext:
    """The real dependencies: SqlRegistry, Temporal, the CloudWatch handler and an alarm lookup
    (this process's alarms, or real CloudWatch when an endpoint URL is configured)."""
    from greenshift.logs.service import logs_api, open_store
    from greenshift.metrics.alarm_source import CloudWatchAlarmSource
    from greenshift.metrics.cloudwatch_api import CloudWatchApi
    from greenshift.metrics.store import MetricStore
    from greenshift.registry.sql import SqlRegistry

    registry = SqlRegistry(settings.registry_url, arn_for=settings.arn)
    cloudwatch = CloudWatchApi(MetricStore(settings.registry_url), settings=settings)
    alarms: AlarmSource = (
        CloudWatchAlarmSource.from_settings(settings)
        if settings.cloudwatch_endpoint_url
        else LocalAlarmSource(cloudwatch)
    )
    return ApiContext(
        settings=settings,
        registry=registry,
        starter=TemporalStarter(settings),
        alarms=alarms,
        cloudwatch=cloudwatch,
        logs=logs_api(settings, open_store(settings)),
    )


def serve_api(settings: Settings) -> None:
    """Run the control API until interrupted. Exits with code 2 on an insecure bind."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        notice = security_notice(settings)
    except InsecureBindError as exc:
        print(f"greenshift api: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_INSECURE) from None
    print(f"greenshift api: {notice}", file=sys.stderr)
    ctx = make_context(settings)
    publisher = WebhookPublisher(parse_urls(settings.webhook_urls))
    tasks: list[Any] = []
    if publisher.enabled:
        source = RegistryEventSource(ctx.registry, settings, publisher.publish)
        tasks.append(source.run)
    # Instance logs: one host's shipper runs here, beside the API that serves what it ships.
    from greenshift.logs.service import shipper

    tasks.append(shipper(settings, ctx.logs.store).run)
    app = build_app(ctx, lifespan_tasks=tasks)
    print(
        f"greenshift api: SageMaker control plane on http://{settings.host}:{settings.api_port}",
        file=sys.stderr,
    )
    try:
        uvicorn.run(app, host=settings.host, port=settings.api_port, log_level="warning")
    finally:
        publisher.close()
