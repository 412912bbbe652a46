"""The one way to get a Temporal client (STYLE.md habit 2).

Every client in Greenshift (API, CLI, worker, tests) comes from `connect()`, so all of them use
the pydantic data converter: workflow inputs, activity inputs and update payloads are pydantic
models or plain JSON, and a `datetime` survives the round trip; and all of them present the
client certificate of `GREENSHIFT_TEMPORAL_TLS_*` to a frontend that requires mutual TLS.
"""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import TLSConfig

from greenshift.errors import ValidationError
from greenshift.settings import Settings


def tls_config(settings: Settings) -> TLSConfig | None:
    """TLS to the frontend when any `temporal_tls_*` setting is given, else plain h2c."""
    cert, key, ca = settings.temporal_tls_cert, settings.temporal_tls_key, settings.temporal_tls_ca
    if cert is None and key is None and ca is None and settings.temporal_tls_server_name is None:
        return None
    if (cert is None) != (key is None):
        raise ValidationError(
            "GREENSHIFT_TEMPORAL_TLS_CERT and GREENSHIFT_TEMPORAL_TLS_KEY go together: a client "
            "certificate is presented with its private key."
        )

    def read(path: Path | None, what: str) -> bytes | None:
        if path is None:
            return None
        try:
            return path.expanduser().read_bytes()
        except OSError as exc:
            raise ValidationError(f"cannot read the Temporal TLS {what} {path}: {exc}") from None

    return TLSConfig(
        client_cert=read(cert, "certificate"),
        client_private_key=read(key, "key"),
        server_root_ca_cert=read(ca, "CA"),
        domain=settings.temporal_tls_server_name,
    )


async def connect(settings: Settings, target: str | None = None) -> Client:
    """A client of the Temporal frontend in `settings` (or `target`, e.g. a test server)."""
    return await Client.connect(
        target or settings.temporal_target,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        tls=tls_config(settings) or False,
    )
