"""SageMaker-style inference handlers: find them, fill in the flavour's defaults, call them as
SageMaker's inference toolkit does (`sagemaker_inference/transformer.py`).

The module named by `SAGEMAKER_PROGRAM` (default `inference.py`) is looked up in
`<model_dir>/code/`, then `<model_dir>/`. It may define `model_fn(model_dir)`,
`input_fn(input_data, content_type)`, `predict_fn(data, model)`, `output_fn(prediction, accept)`,
or `transform_fn(model, input_data, content_type, accept)` instead of the last three (both at once
is the toolkit's ValueError). What it leaves out comes from its flavour
(greenshift.fleet.serving.flavours); a module-less model gets the flavour's defaults, which
have no model_fn except PyTorch's, so it fails to load as SageMaker's container does.

As the toolkit: a `application/json` or `text/csv` body reaches `input_fn` as str, any other as
bytes; a missing or `*/*` Accept becomes `SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT` (default
`application/json`); a bare result is sent with the Accept type, a `(body, content_type)` tuple
with its own.

Greenshift extensions (both optional, both ignored by the real toolkit):

- Any handler that declares a parameter named `context` receives an `InvocationContext`: it
  carries the request's `X-Amzn-SageMaker-Custom-Attributes` (`custom_attributes`) and lets the
  handler set the response's (`response_custom_attributes`). Keyword-only, so the SageMaker
  signatures stay valid.
- Streaming (`InvokeEndpointWithResponseStream`): a handler whose result (what `output_fn` or
  `transform_fn` returns) is an iterator or generator, bare or as `(iterator, content_type)`,
  streams: every item is one part, sent as soon as it is produced (bytes as they are, str as UTF-8,
  anything else as JSON). Set `context.response_custom_attributes` before the first item: the
  headers leave with the first part. An exception before the first item is a ModelError (424); one
  after it reaches the client as a `ModelStreamError` event. Through `InvokeEndpoint` the parts
  are joined into one body.
- A module that sets `GREENSHIFT_INLINE = True` promises its handlers are quick and never block:
  they then run on the server's event loop instead of a worker thread, which roughly doubles the
  requests/s of a trivial model. Any blocking handler must leave it unset.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from . import codecs
from .flavours import DEFAULTS

DEFAULT_PROGRAM = "inference.py"
JSON = codecs.JSON


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
    # A streaming handler's parts (body is then empty); see the module docstring.
    parts: Iterator[Any] | None = None

    def joined(self) -> Response:
        """The whole answer in one body (InvokeEndpoint of a streaming handler)."""
        if self.parts is None:
            return self
        body = b"".join(encode_part(p) for p in self.parts)
        return Response(body, self.content_type, self.custom_attributes)


def encode_part(part: Any) -> bytes:
    """One streamed part as bytes: bytes as they are, str as UTF-8, anything else as JSON."""
    if isinstance(part, bytes | bytearray | memoryview):
        return bytes(part)
    if isinstance(part, str):
        return part.encode("utf-8")
    return codecs.encode(part, JSON).encode("utf-8")


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


def default_accept() -> str:
    return os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", JSON)


class Handlers:
    """The handlers of one model, the flavour's defaults filled in."""

    def __init__(self, module: ModuleType | None = None, flavour: str = "generic") -> None:
        defaults = DEFAULTS[flavour]
        self.flavour = flavour

        def user(name: str) -> Callable[..., Any] | None:
            fn = getattr(module, name, None) if module is not None else None
            return fn if callable(fn) else None

        transform, input_fn, predict_fn, output_fn = (
            user(n) for n in ("transform_fn", "input_fn", "predict_fn", "output_fn")
        )
        if transform and (input_fn or predict_fn or output_fn):
            raise ValueError(
                "Cannot use transform_fn implementation in conjunction with "
                "input_fn, predict_fn, and/or output_fn implementation"
            )
        self.model_fn = _Call(user("model_fn") or defaults.model_fn)
        self.transform_fn = _Call(transform) if transform else None
        self.input_fn = _Call(input_fn or defaults.input_fn)
        self.predict_fn = _Call(predict_fn or defaults.predict_fn)
        self.output_fn = _Call(output_fn or defaults.output_fn)
        self.inline = bool(getattr(module, "GREENSHIFT_INLINE", False))

    @classmethod
    def from_model_dir(
        cls, model_dir: Path, program: str = DEFAULT_PROGRAM, flavour: str = "generic"
    ) -> Handlers:
        """Load the program from the model directory. No module at all means the flavour's
        defaults (the toolkit does the same when `find_spec` finds nothing); a program named
        explicitly that is missing is an error."""
        path = find_program(model_dir, program)
        if path is None:
            if program not in (DEFAULT_PROGRAM, DEFAULT_PROGRAM[:-3]):
                raise HandlerNotFoundError(f"{program} not in {model_dir}/code or {model_dir}")
            return cls(None, flavour)
        return cls(load_module(path), flavour)

    def load_model(self, model_dir: Path) -> Any:
        context = InvocationContext(content_type="", accept="")
        return self.model_fn(str(model_dir), context=context)

    def invoke(self, model: Any, body: bytes, context: InvocationContext) -> Response:
        """Run one invocation through the handlers. Exceptions propagate: the server turns
        them into a 500 carrying the message, as the toolkit does."""
        accept = context.accept
        if not accept or accept == codecs.ANY:
            accept = default_accept()
            context.accept = accept
        content_type = context.content_type
        data: Any = body.decode("utf-8") if content_type in codecs.UTF8_TYPES else body
        if self.transform_fn is not None:
            result = self.transform_fn(model, data, content_type, accept, context=context)
        else:
            decoded = self.input_fn(data, content_type, context=context)
            prediction = self.predict_fn(decoded, model, context=context)
            result = self.output_fn(prediction, accept, context=context)
        return _response(result, accept, context)


def _response(result: Any, accept: str, context: InvocationContext) -> Response:
    """A bare body goes out as the Accept type; a `(body, content_type)` tuple as its own (the
    toolkit's transformer). A str body is UTF-8. Anything else that is not bytes (a dict from a
    handler that skipped output_fn's job) is JSON, so it is never sent as Python's repr."""
    content_type = accept
    if isinstance(result, tuple) and len(result) == 2:
        result, content_type = result
    if isinstance(result, Iterator):
        return Response(b"", str(content_type), context.response_custom_attributes, result)
    if isinstance(result, str):
        body = result.encode("utf-8")
    elif isinstance(result, bytes | bytearray | memoryview):
        body = bytes(result)
    else:
        body = codecs.encode(result, JSON).encode("utf-8")
        content_type = JSON
    return Response(body, str(content_type), context.response_custom_attributes)
