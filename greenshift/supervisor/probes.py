"""Health probes for the components that have a port: does it accept a connection, does it
answer HTTP without a 5xx."""

from __future__ import annotations

import contextlib
import socket
from typing import Any


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def http_ok(url: str, timeout: float = 1.0, **kwargs: Any) -> bool:
    import httpx

    try:
        response = httpx.request(kwargs.pop("method", "GET"), url, timeout=timeout, **kwargs)
    except httpx.HTTPError:
        return False
    return response.status_code < 500
