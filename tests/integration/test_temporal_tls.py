"""Mutual TLS to Temporal (issue 14, door 1): every Greenshift client comes from
`greenshift.temporal.connect`, which presents `GREENSHIFT_TEMPORAL_TLS_*`'s certificate.

The bundled dev server has no TLS flags, so the frontend here is a real Temporal dev server
behind HAProxy terminating TLS with `verify required` (what Temporal's own
`requireClientAuth: true` does): a client certificate signed by the clients' CA gets through,
none or one signed by another CA does not. Certificates are made by the test with openssl.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.testing import WorkflowEnvironment

from greenshift.binaries import SERVER_STARTUP_TIMEOUT, haproxy, temporal_cli
from greenshift.errors import ValidationError
from greenshift.settings import Settings
from greenshift.temporal import connect, tls_config
from tests.ports import free_port as _free_port

pytestmark = pytest.mark.timeout(120)
SERVER_NAME = "temporal.greenshift.test"


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


def _ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             f"/CN={name}", "-keyout", key, "-out", cert)  # fmt: skip
    return cert, key


def _signed(folder: Path, name: str, ca: tuple[Path, Path], san: str | None = None) -> Path:
    """A key and a certificate for `name` signed by `ca`; returns the certificate's path."""
    key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.pem"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
             "-keyout", key, "-out", csr)  # fmt: skip
    extensions = folder / f"{name}.ext"
    extensions.write_text(f"subjectAltName=DNS:{san}\n" if san else "basicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
             "-days", "2", "-extfile", extensions, "-out", cert)  # fmt: skip
    return cert


@dataclass
class Pki:
    server_ca: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # signed by a CA the frontend does not trust
    stranger_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    server_ca, clients_ca, other_ca = (_ca(folder, n) for n in ("server-ca", "clients-ca", "other"))
    server = _signed(folder, "frontend", server_ca, san=SERVER_NAME)
    (folder / "frontend-bundle.pem").write_bytes(
        server.read_bytes() + (folder / "frontend.key").read_bytes()
    )
    client = _signed(folder, "greenshift", clients_ca)
    stranger = _signed(folder, "stranger", other_ca)
    return Pki(
        server_ca=server_ca[0],
        client_cert=client,
        client_key=folder / "greenshift.key",
        stranger_cert=stranger,
        stranger_key=folder / "stranger.key",
    )


@pytest_asyncio.fixture(scope="module")
async def frontend(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """host:port of a Temporal frontend that requires a client certificate of the clients' CA."""
    folder = pki.server_ca.parent
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), dev_server_startup_timeout=SERVER_STARTUP_TIMEOUT
    )
    port = _free_port()
    config = tmp_path_factory.mktemp("tls-frontend") / "haproxy.cfg"
    config.write_text(
        "global\n  maxconn 256\n"
        "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n"
        "  timeout server 60s\n"
        f"frontend temporal_tls\n  bind 127.0.0.1:{port} ssl crt {folder / 'frontend-bundle.pem'}"
        f" ca-file {folder / 'clients-ca.pem'} verify required alpn h2\n"
        "  default_backend temporal\n"
        f"backend temporal\n  server dev {env.client.service_client.config.target_host}\n"
    )
    proxy = await asyncio.create_subprocess_exec(
        haproxy(), "-f", str(config), stdin=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proxy.returncode is None, "HAProxy exited"
                assert time.monotonic() < deadline, "HAProxy never listened"
                await asyncio.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proxy.terminate()
        await asyncio.wait_for(proxy.wait(), 10)
        await env.shutdown()


def _settings(frontend: str, **tls: object) -> Settings:
    return Settings(temporal_address=frontend, temporal_tls_server_name=SERVER_NAME, **tls)


async def test_a_client_certificate_of_the_clients_ca_reaches_the_workflows(
    frontend: str, pki: Pki
) -> None:
    settings = _settings(
        frontend,
        temporal_tls_cert=pki.client_cert,
        temporal_tls_key=pki.client_key,
        temporal_tls_ca=pki.server_ca,
    )
    client = await connect(settings)
    info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    assert info.server_version  # a real answer from the dev server, through TLS
    assert [w async for w in client.list_workflows()] == []


@pytest.mark.parametrize("who", ["no certificate", "another CA's certificate"])
async def test_without_a_trusted_client_certificate_nothing_gets_through(
    frontend: str, pki: Pki, who: str
) -> None:
    tls: dict[str, object] = {"temporal_tls_ca": pki.server_ca}
    if who == "another CA's certificate":
        tls |= {"temporal_tls_cert": pki.stranger_cert, "temporal_tls_key": pki.stranger_key}
    with pytest.raises(RuntimeError, match="connect"):
        client = await asyncio.wait_for(connect(_settings(frontend, **tls)), 30)
        await client.workflow_service.get_system_info(GetSystemInfoRequest())


def test_a_certificate_without_its_key_is_refused_before_connecting(pki: Pki) -> None:
    settings = Settings(temporal_tls_cert=pki.client_cert)
    with pytest.raises(ValidationError, match="go together"):
        tls_config(settings)
    assert tls_config(Settings()) is None  # no TLS setting: plain h2c, as the embedded stack
