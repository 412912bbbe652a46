"""The handler defaults of each flavour against SageMaker's toolkits (sagemaker-inference-toolkit,
aws/sagemaker-scikit-learn-container, aws/sagemaker-pytorch-inference-toolkit): in process, no
HTTP. PyTorch is not installed in Greenshift's environment (nor in tests: its PyPI wheels are GBs
of CUDA), so its defaults are covered only where they need no torch: the model-file rule and its
message, output_fn on a non-tensor, and the refusal of an unsupported Accept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from greenshift.fleet.serving import codecs
from greenshift.fleet.serving.flavours import PytorchDefaults, pytorch_model_file
from greenshift.fleet.serving.handlers import Handlers, InvocationContext

UNSUPPORTED = "Content type {} is not supported by this framework."


def _ctx(content_type: str = "application/json", accept: str = "") -> InvocationContext:
    return InvocationContext(content_type=content_type, accept=accept)


def _module(tmp_path: Path, text: str) -> Path:
    (tmp_path / "code").mkdir(parents=True, exist_ok=True)
    (tmp_path / "code" / "inference.py").write_text(text)
    return tmp_path


# A model with scikit-learn's interface (what the sklearn default predict_fn calls), defined in
# the model's own inference.py, which has only model_fn.
MODEL_FN_ONLY = """
class Doubler:
    def __init__(self):
        self.seen = []

    def predict(self, x):
        self.seen.append(x)
        return x.sum(axis=1) * 2


def model_fn(model_dir):
    return Doubler()
"""


@pytest.fixture
def sklearn_model(tmp_path: Path) -> tuple[Handlers, Any]:
    handlers = Handlers.from_model_dir(_module(tmp_path, MODEL_FN_ONLY), flavour="sklearn")
    return handlers, handlers.load_model(tmp_path)


def test_sklearn_model_fn_only_csv_in_csv_out_is_the_prediction(
    sklearn_model: tuple[Handlers, Any],
) -> None:
    handlers, model = sklearn_model
    out = handlers.invoke(model, b"1,2,3", _ctx("text/csv", "text/csv"))
    assert (out.body, out.content_type) == (b"12.0\n", "text/csv")
    # The default input_fn made the 1-D row a (1, 3) float32 matrix, as the container does.
    assert model.seen[0].shape == (1, 3) and model.seen[0].dtype == np.float32


def test_sklearn_json_in_json_out_and_the_default_accept(
    sklearn_model: tuple[Handlers, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    handlers, model = sklearn_model
    out = handlers.invoke(model, b"[[1, 2], [3, 4]]", _ctx("application/json", "*/*"))
    assert (out.body, out.content_type) == (b"[6.0, 14.0]", "application/json")
    monkeypatch.setenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/csv")
    out = handlers.invoke(model, b"[[1, 2]]", _ctx("application/json", ""))
    assert (out.body, out.content_type) == (b"6.0\n", "text/csv")


def test_sklearn_unsupported_accept_is_the_toolkits_error_not_an_answer(
    sklearn_model: tuple[Handlers, Any],
) -> None:
    handlers, model = sklearn_model
    with pytest.raises(codecs.UnsupportedFormatError) as raised:
        handlers.invoke(model, b"1,2", _ctx("text/csv", "text/html"))
    assert str(raised.value).startswith(UNSUPPORTED.format("text/html"))
    # The scikit-learn container takes Accept whole: a list of types is refused too.
    with pytest.raises(codecs.UnsupportedFormatError):
        handlers.invoke(model, b"1,2", _ctx("text/csv", "text/csv, application/json"))


def test_sklearn_has_no_default_model_fn(tmp_path: Path) -> None:
    handlers = Handlers.from_model_dir(tmp_path, flavour="sklearn")
    with pytest.raises(NotImplementedError) as raised:
        handlers.load_model(tmp_path)
    assert str(raised.value) == (
        "\nPlease provide a model_fn implementation.\n"
        "See documentation for model_fn at https://github.com/aws/sagemaker-python-sdk\n"
    )


def test_generic_model_fn_only_refuses_to_predict_never_echoes(tmp_path: Path) -> None:
    handlers = Handlers.from_model_dir(_module(tmp_path, "def model_fn(d):\n    return 1\n"))
    model = handlers.load_model(tmp_path)
    with pytest.raises(NotImplementedError, match="Please provide a predict_fn implementation"):
        handlers.invoke(model, b'{"a": 1}', _ctx())


def test_generic_output_fn_takes_the_first_supported_accept(tmp_path: Path) -> None:
    handlers = Handlers.from_model_dir(
        _module(tmp_path, "def model_fn(d):\n    return 1\ndef predict_fn(x, m):\n    return x\n")
    )
    out = handlers.invoke(1, b"[1, 2]", _ctx("application/json", "text/html, text/csv"))
    assert (out.body, out.content_type) == (b"1\n2\n", "text/csv")
    npy = handlers.invoke(1, b"[1, 2]", _ctx("application/json", "application/x-npy"))
    assert npy.content_type == "application/x-npy"
    assert np.load(__import__("io").BytesIO(npy.body)).tolist() == [1, 2]
    with pytest.raises(codecs.UnsupportedFormatError, match="text/html"):
        handlers.invoke(1, b"[1]", _ctx("application/json", "text/html"))


def test_text_bodies_reach_input_fn_as_str_others_as_bytes(tmp_path: Path) -> None:
    handlers = Handlers.from_model_dir(
        _module(
            tmp_path,
            "def model_fn(d):\n    return 1\n"
            "def input_fn(body, content_type):\n    return type(body).__name__\n"
            "def predict_fn(x, m):\n    return x\n"
            "def output_fn(p, accept):\n    return p\n",
        )
    )
    kinds = {
        ct: handlers.invoke(1, b"1", _ctx(ct, "text/plain")).body
        for ct in ("text/csv", "application/json", "application/x-npy", "text/plain")
    }
    assert kinds == {
        "text/csv": b"str",
        "application/json": b"str",
        "application/x-npy": b"bytes",
        "text/plain": b"bytes",
    }


def test_transform_fn_with_predict_fn_is_the_toolkits_value_error(tmp_path: Path) -> None:
    text = "def transform_fn(m, b, c, a):\n    return b\ndef predict_fn(x, m):\n    return x\n"
    with pytest.raises(ValueError, match="Cannot use transform_fn implementation in conjunction"):
        Handlers.from_model_dir(_module(tmp_path, text))


def test_unknown_content_type_is_the_toolkits_decoder_error() -> None:
    with pytest.raises(codecs.UnsupportedFormatError, match="text/plain is not supported"):
        codecs.decode("x", "text/plain")
    assert codecs.decode("1,2\n3,4", "text/csv").tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_pytorch_model_file_rule_and_message(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as raised:
        pytorch_model_file(str(tmp_path))
    assert str(raised.value) == "Exactly one .pth or .pt file is required for PyTorch models: []"
    (tmp_path / "a.pth").write_bytes(b"")
    assert pytorch_model_file(str(tmp_path)) == str(tmp_path / "a.pth")
    (tmp_path / "b.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"\['a.pth', 'b.pt'\]"):
        pytorch_model_file(str(tmp_path))
    (tmp_path / "model.pt").write_bytes(b"")
    assert pytorch_model_file(str(tmp_path)) == str(tmp_path / "model.pt")


def test_pytorch_output_fn_encodes_csv_as_bytes_and_refuses_unknown_accept() -> None:
    assert PytorchDefaults.output_fn([[1.5, 2.0]], "text/csv") == b"1.5,2.0\n"
    assert PytorchDefaults.output_fn([1, 2], "text/html, application/json") == "[1, 2]"
    with pytest.raises(codecs.UnsupportedFormatError, match="text/html"):
        PytorchDefaults.output_fn([1], "text/html")
