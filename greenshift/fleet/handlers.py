"""SageMaker-style inference handlers: find them, fill in defaults, call them.

Follows the SageMaker inference toolkit: the module named by `SAGEMAKER_PROGRAM` (default
`inference.py`) is looked up in `<model_dir>/code/`, then `<model_dir>/`. It may define
`model_fn(model_dir)`, `input_fn(body, content_type)`, `predict_fn(data, model)`,
`output_fn(prediction, accept)`, or `transform_fn(model, body, content_type, accept)` alone.
Missing handlers get JSON defaults, so a module with only `predict_fn` works.

Greenshift extensions (both optional, both ignored by the real toolkit):

- Any handler that declares a parameter named `context` receives an `InvocationContext`: it
  carries the request's `X-Amzn-SageMaker-Custom-Attributes` (`custom_attributes`) and lets the
  handler set the response's (`response_custom_attributes`). Keyword-only, so the SageMaker
  signatures stay valid.
- A module that sets `GREENSHIFT_INLINE = True` promises its handlers are quick and never block:
  they then run on the server's event loop instead of a worker thread, which roughly doubles the
  requests/s of a trivial model. Any blocking handler must leave it unset.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

DEFAULT_PROGRAM = "inference.py"
JSON = "application/json"


@dataclass
class InvocationContext:
    """What a handler may learn about, and add to, the HTTP exchange around it."""

    content_type: str
    accept: str
    custom_attributes: str | None = None
    response_custom_attributes: str | None = None


@dataclass
class Response:
    body: bytes
    content_type: str
    custom_attributes: str | None = None


class HandlerNotFoundError(Exception):
    """The handler module named by SAGEMAKER_PROGRAM is in neither place it may be."""


def find_program(model_dir: Path, program: str = DEFAULT_PROGRAM) -> Path | None:
    """`<model_dir>/code/<program>`, else `<model_dir>/<program>`, else None."""
    name = program if program.endswith(".py") else f"{program}.py"
    for candidate in (model_dir / "code" / name, model_dir / name):
        if candidate.is_file():
            return candidate
    return None


def load_module(path: Path) -> ModuleType:
    """Import the handler file as a module; its folder goes on sys.path so it can import its
    neighbours (as the toolkit allows for `code/` with helper modules)."""
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise HandlerNotFoundError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


# --- defaults (JSON in, JSON out) -------------------------------------------------------------


def default_model_fn(model_dir: str) -> Any:
    return model_dir


def default_input_fn(body: bytes, content_type: str) -> Any:
    kind = _media(content_type)
    if kind in ("", JSON) or kind.endswith("+json"):
        return json.loads(body) if body else None
    if kind.startswith("text/"):
        return body.decode("utf-8")
    return body


def default_predict_fn(data: Any, model: Any) -> Any:
    """A callable model is applied to the data; anything else echoes it (handy for tests)."""
    return model(data) if callable(model) else data


def default_output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    if isinstance(prediction, bytes | bytearray):
        return bytes(prediction), _concrete(accept, "application/octet-stream")
    if isinstance(prediction, str) and _media(accept).startswith("text/"):
        return prediction.encode("utf-8"), accept
    return json.dumps(prediction, separators=(",", ":")).encode("utf-8"), JSON


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _concrete(accept: str, fallback: str) -> str:
    media = _media(accept)
    return accept if media and "*" not in media else fallback


# --- the handler set ----------------------------------------------------------------------------


def _takes_context(fn: Callable[..., Any]) -> bool:
    try:
        return "context" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class _Call:
    """One handler function, remembering whether it wants the context."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.with_context = _takes_context(fn)

    def __call__(self, *args: Any, context: InvocationContext) -> Any:
        if self.with_context:
            return self.fn(*args, context=context)
        return self.fn(*args)


class Handlers:
    """The handlers of one model, defaults filled in."""

    def __init__(self, module: ModuleType | None = None) -> None:
        def pick(name: str, default: Callable[..., Any]) -> Callable[..., Any]:
            fn = getattr(module, name, None) if module is not None else None
            return fn if callable(fn) else default

        self.model_fn = pick("model_fn", default_model_fn)
        transform = getattr(module, "transform_fn", None) if module is not None else None
        self.transform_fn = _Call(transform) if callable(transform) else None
        self.input_fn = _Call(pick("input_fn", default_input_fn))
        self.predict_fn = _Call(pick("predict_fn", default_predict_fn))
        self.output_fn = _Call(pick("output_fn", default_output_fn))
        self.inline = bool(getattr(module, "GREENSHIFT_INLINE", False))

    @classmethod
    def from_model_dir(cls, model_dir: Path, program: str = DEFAULT_PROGRAM) -> Handlers:
        """Load the program from the model directory; no program at all means all defaults
        (an echo server), as the toolkit does for a model without code."""
        path = find_program(model_dir, program)
        if path is None:
            if program != DEFAULT_PROGRAM:
                raise HandlerNotFoundError(f"{program} not in {model_dir}/code or {model_dir}")
            return cls(None)
        return cls(load_module(path))

    def load_model(self, model_dir: Path) -> Any:
        return self.model_fn(str(model_dir))

    def invoke(self, model: Any, body: bytes, context: InvocationContext) -> Response:
        """Run one invocation through the handlers. Exceptions propagate: the server turns
        them into a 500 carrying the message."""
        accept = context.accept
        if self.transform_fn is not None:
            result = self.transform_fn(model, body, context.content_type, accept, context=context)
        else:
            data = self.input_fn(body, context.content_type, context=context)
            prediction = self.predict_fn(data, model, context=context)
            result = self.output_fn(prediction, accept, context=context)
        return _response(result, accept, context)


def _response(result: Any, accept: str, context: InvocationContext) -> Response:
    """`body` or `(body, content_type)`; a str body is UTF-8, anything else not bytes is JSON."""
    content_type = _concrete(accept, JSON)
    if isinstance(result, tuple) and len(result) == 2:
        result, content_type = result
    if isinstance(result, str):
        body = result.encode("utf-8")
    elif isinstance(result, bytes | bytearray | memoryview):
        body = bytes(result)
    else:
        body = json.dumps(result, separators=(",", ":")).encode("utf-8")
        content_type = JSON
    return Response(body, str(content_type), context.response_custom_attributes)
