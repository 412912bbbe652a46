"""Handler discovery and the SageMaker handler variants, in process (no HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenshift.fleet.handlers import (
    HandlerNotFoundError,
    Handlers,
    InvocationContext,
    find_program,
)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _ctx(
    content_type: str = "application/json",
    accept: str = "application/json",
    attrs: str | None = None,
) -> InvocationContext:
    return InvocationContext(content_type=content_type, accept=accept, custom_attributes=attrs)


def test_code_folder_wins_over_model_root(tmp_path: Path) -> None:
    _write(tmp_path / "inference.py", "")
    code = _write(tmp_path / "code" / "inference.py", "")
    assert find_program(tmp_path) == code
    (code).unlink()
    assert find_program(tmp_path) == tmp_path / "inference.py"


def test_sagemaker_program_renames_the_module(tmp_path: Path) -> None:
    _write(
        tmp_path / "code" / "serve.py",
        "def model_fn(model_dir):\n    return 1\n"
        "def predict_fn(data, model):\n    return {'s': data.tolist()}\n",
    )
    handlers = Handlers.from_model_dir(tmp_path, "serve.py")
    out = handlers.invoke(handlers.load_model(tmp_path), b"[1, 2]", _ctx())
    assert (out.body, out.content_type) == (b'{"s": [1, 2]}', "application/json")
    with pytest.raises(HandlerNotFoundError):
        Handlers.from_model_dir(tmp_path, "missing.py")


def test_no_program_fails_to_load_as_the_toolkit_never_echoes(tmp_path: Path) -> None:
    handlers = Handlers.from_model_dir(tmp_path)
    with pytest.raises(NotImplementedError, match="Please provide a model_fn implementation"):
        handlers.load_model(tmp_path)


def test_four_handlers_in_order(tmp_path: Path) -> None:
    _write(
        tmp_path / "code" / "inference.py",
        """
def model_fn(model_dir):
    return {"dir": model_dir}
def input_fn(body, content_type):
    return (body.decode(), content_type)
def predict_fn(data, model):
    return {"data": data, "model": model}
def output_fn(prediction, accept):
    return repr(prediction), "text/x-repr"
""",
    )
    handlers = Handlers.from_model_dir(tmp_path)
    out = handlers.invoke(handlers.load_model(tmp_path), b"hi", _ctx("text/plain", "*/*"))
    assert out.content_type == "text/x-repr"
    assert out.body.decode() == repr(
        {"data": ("hi", "text/plain"), "model": {"dir": str(tmp_path)}}
    )


def test_transform_fn_alone(tmp_path: Path) -> None:
    _write(
        tmp_path / "inference.py",
        """
def model_fn(model_dir):
    return 7
def transform_fn(model, body, content_type, accept):
    return b"%d:%s:%s:%s" % (model, body, content_type.encode(), accept.encode())
""",
    )
    handlers = Handlers.from_model_dir(tmp_path)
    out = handlers.invoke(handlers.load_model(tmp_path), b"x", _ctx("a/b", "c/d"))
    assert (out.body, out.content_type) == (b"7:x:a/b:c/d", "c/d")


def test_context_carries_custom_attributes_both_ways(tmp_path: Path) -> None:
    _write(
        tmp_path / "inference.py",
        """
def predict_fn(data, model, context):
    context.response_custom_attributes = "seen=" + (context.custom_attributes or "")
    return data
""",
    )
    handlers = Handlers.from_model_dir(tmp_path)
    out = handlers.invoke(None, b"1", _ctx(attrs="trace=abc"))
    assert out.custom_attributes == "seen=trace=abc"


def test_handler_exceptions_propagate(tmp_path: Path) -> None:
    _write(tmp_path / "inference.py", "def predict_fn(d, m):\n    raise ValueError('bad input')\n")
    handlers = Handlers.from_model_dir(tmp_path)
    with pytest.raises(ValueError, match="bad input"):
        handlers.invoke(None, b"1", _ctx())
