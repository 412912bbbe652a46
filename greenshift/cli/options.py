"""Options shared by the commands: each flag is also an environment variable, and both end up in
one `Settings` (flags win)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from greenshift.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

_STACK_OPTIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("--home", "GREENSHIFT_HOME", {"type": click.Path(path_type=Path), "help": "state directory"}),
    ("--api-port", "GREENSHIFT_API_PORT", {"type": int, "help": "control API port (7070)"}),
    ("--runtime-port", "GREENSHIFT_RUNTIME_PORT", {"type": int, "help": "runtime port (8080)"}),
    ("--temporal-port", "GREENSHIFT_TEMPORAL_PORT", {"type": int, "help": "Temporal port (7233)"}),
    ("--ui-port", "GREENSHIFT_UI_PORT", {"type": int, "help": "Temporal UI port (8233)"}),
    ("--stats-port", "GREENSHIFT_STATS_PORT", {"type": int, "help": "HAProxy stats port (8405)"}),
    (
        "--instance-port-base",
        "GREENSHIFT_INSTANCE_PORT_BASE",
        {"type": int, "help": "first port for model instances (19000)"},
    ),
    (
        "--temporal-address",
        "GREENSHIFT_TEMPORAL_ADDRESS",
        {"help": "use this Temporal frontend (host:port) instead of starting one"},
    ),
    (
        "--database-url",
        "GREENSHIFT_DATABASE_URL",
        {"help": "registry database URL (PostgreSQL); default a SQLite file in the home"},
    ),
]


def stack_options(func: F) -> F:
    """Add the stack's flags; the command receives `settings: Settings` instead of them."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        overrides = {}
        for flag, _, _ in _STACK_OPTIONS:
            key = flag.lstrip("-").replace("-", "_")
            value = kwargs.pop(key, None)
            if value is not None:
                overrides[key] = value
        kwargs["settings"] = Settings(**overrides)
        return func(*args, **kwargs)

    for flag, envvar, extra in reversed(_STACK_OPTIONS):
        wrapper = click.option(flag, envvar=envvar, show_envvar=True, default=None, **extra)(
            wrapper
        )
    return wrapper  # type: ignore[return-value]


def api_options(func: F) -> F:
    """For commands that talk to a running Greenshift: where its API is."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        overrides: dict[str, Any] = {}
        home = kwargs.pop("home", None)
        port = kwargs.pop("api_port", None)
        if home is not None:
            overrides["home"] = home
        if port is not None:
            overrides["api_port"] = port
        kwargs["settings"] = Settings(**overrides)
        return func(*args, **kwargs)

    wrapper = click.option(
        "--api-port", envvar="GREENSHIFT_API_PORT", show_envvar=True, type=int, default=None
    )(wrapper)
    wrapper = click.option(
        "--home",
        envvar="GREENSHIFT_HOME",
        show_envvar=True,
        type=click.Path(path_type=Path),
        default=None,
    )(wrapper)
    return wrapper  # type: ignore[return-value]
