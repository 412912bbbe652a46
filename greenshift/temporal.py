"""The one way to get a Temporal client (STYLE.md habit 2).

Every client in Greenshift (API, CLI, worker, tests) comes from `connect()`, so all of them use
the pydantic data converter: workflow inputs, activity inputs and update payloads are pydantic
models or plain JSON, and a `datetime` survives the round trip; and all of them present the
client certificate of `GREENSHIFT_TEMPORAL_TLS_*` to a frontend that requires mutual TLS.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

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


# temporalio/sdk-python#300 (open): a process that made a Temporal client can abort at interpreter
# teardown, "Fatal Python error: PyGILState_Release: thread state ... must be current when
# releasing" and SIGABRT, when a thread of the SDK's Rust runtime outlives the interpreter. It
# failed `greenshift hosts drain` once in CI after the drain had succeeded. Such a process ends
# with exit_skipping_teardown, as the SDK's users do (os._exit once the work is done): the
# `greenshift` command, the worker and the API all run through run_process.
_made_a_client = False


def made_a_client() -> bool:
    """Whether this process connected a Temporal client (exit_skipping_teardown says why)."""
    return _made_a_client


def exit_skipping_teardown(code: object) -> NoReturn:
    """End the process as `sys.exit(code)` would, after flushing logs and standard streams,
    without the interpreter's teardown."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def run_process(main: Callable[[], object]) -> NoReturn:
    """A process's whole life: `main()`, then its end, without the interpreter's teardown once
    it made a Temporal client. The status is what Python would give: 0, SystemExit's code, or 1
    after the traceback of an uncaught exception."""
    try:
        main()
        code: str | int | None = 0
    except SystemExit as done:
        code = done.code
    except BaseException:
        if not made_a_client():
            raise
        traceback.print_exc()
        code = 1
    if made_a_client():
        exit_skipping_teardown(code)
    sys.exit(code)


async def connect(settings: Settings, target: str | None = None) -> Client:
    """A client of the Temporal frontend in `settings` (or `target`, e.g. a test server)."""
    global _made_a_client
    _made_a_client = True
    return await Client.connect(
        target or settings.temporal_target,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        tls=tls_config(settings) or False,
    )
