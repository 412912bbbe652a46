"""Decoders and encoders exactly as SageMaker's inference toolkit has them
(`aws/sagemaker-inference-toolkit`, `sagemaker_inference/decoder.py`, `encoder.py`,
`errors.py`, `utils.parse_accept`): the same content types, the same numpy conversions, the same
error message for a type no decoder or encoder knows.

Standard library and numpy only: this module runs inside the model's own environment.
"""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Callable
from typing import Any

JSON = "application/json"
CSV = "text/csv"
OCTET_STREAM = "application/octet-stream"
ANY = "*/*"
NPY = "application/x-npy"
NPZ = "application/x-npz"
# The toolkit hands these bodies to input_fn as str (transformer.py), all others as bytes.
UTF8_TYPES = (JSON, CSV)


class UnsupportedFormatError(Exception):
    """A content type no default decoder / encoder handles (the toolkit's words, typo included)."""

    def __init__(self, content_type: str) -> None:
        self.message = textwrap.dedent(
            f"""Content type {content_type} is not supported by this framework.

            Please implement input_fn to to deserialize the request data or an output_fn to
            serialize the response. For more information, see the SageMaker Python SDK README."""
        )
        super().__init__(self.message)


def _np() -> Any:
    import numpy  # imported on first use: a model with its own handlers need not pay for it

    return numpy


def _json_to_numpy(string_like: Any) -> Any:
    return _np().array(json.loads(string_like))


def _csv_to_numpy(string_like: Any) -> Any:
    if isinstance(string_like, bytes | bytearray):
        string_like = bytes(string_like).decode("utf-8")
    return _np().genfromtxt(io.StringIO(string_like), delimiter=",")


def _npy_to_numpy(npy_array: Any) -> Any:
    return _np().load(io.BytesIO(npy_array), allow_pickle=True)


def _npz_to_sparse(npz_bytes: Any) -> Any:
    import scipy.sparse  # only the toolkit's NPZ decoder needs scipy

    return scipy.sparse.load_npz(io.BytesIO(npz_bytes))


_DECODERS: dict[str, Callable[[Any], Any]] = {
    NPY: _npy_to_numpy,
    CSV: _csv_to_numpy,
    JSON: _json_to_numpy,
    NPZ: _npz_to_sparse,
}


def decode(obj: Any, content_type: str) -> Any:
    """`decoder.decode`: the exact content type picks the decoder (no parameters stripped)."""
    try:
        decoder = _DECODERS[content_type]
    except KeyError:
        raise UnsupportedFormatError(content_type) from None
    return decoder(obj)


def _array_to_json(array_like: Any) -> str:
    def default(value: Any) -> Any:
        if hasattr(value, "tolist"):
            return value.tolist()
        return json.JSONEncoder().default(value)

    return json.dumps(array_like, default=default)


def _array_to_npy(array_like: Any) -> bytes:
    buffer = io.BytesIO()
    _np().save(buffer, array_like)
    return buffer.getvalue()


def _array_to_csv(array_like: Any) -> str:
    stream = io.StringIO()
    _np().savetxt(stream, array_like, delimiter=",", fmt="%s")
    return stream.getvalue()


_ENCODERS: dict[str, Callable[[Any], Any]] = {
    NPY: _array_to_npy,
    CSV: _array_to_csv,
    JSON: _array_to_json,
}
SUPPORTED_CONTENT_TYPES = frozenset(_ENCODERS)


def encode(array_like: Any, content_type: str) -> Any:
    """`encoder.encode`: str for JSON and CSV, bytes for NPY."""
    try:
        encoder = _ENCODERS[content_type]
    except KeyError:
        raise UnsupportedFormatError(content_type) from None
    return encoder(array_like)


def parse_accept(accept: str) -> list[str]:
    """`utils.parse_accept`: the listed types in order, spaces dropped (q-values are not
    understood by the toolkit either)."""
    return accept.replace(" ", "").split(",")
