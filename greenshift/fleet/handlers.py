"""The handler rules live in the self-contained serving package (it runs inside the model's own
environment, without Greenshift); this name stays for Greenshift's own callers."""

from greenshift.fleet.serving.handlers import (
    DEFAULT_PROGRAM,
    HandlerNotFoundError,
    Handlers,
    InvocationContext,
    Response,
    find_program,
    load_module,
)

__all__ = [
    "DEFAULT_PROGRAM",
    "HandlerNotFoundError",
    "Handlers",
    "InvocationContext",
    "Response",
    "find_program",
    "load_module",
]
