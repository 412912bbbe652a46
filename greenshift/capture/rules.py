"""What to capture and how a capture record looks (pure).

SageMaker's capture format: one JSON line per invocation,
`{"captureData": {"endpointInput": {...}, "endpointOutput": {...}}, "eventMetadata": {...},
"eventVersion": "0"}`; each side is `{"observedContentType", "mode": "INPUT"|"OUTPUT", "data",
"encoding": "CSV"|"JSON"|"BASE64"}`. The data is text (encoding CSV / JSON) when its content type
is listed in `CaptureContentTypeHeader`, else base64, SageMaker's default. Files go to
`<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-fff>-<id>.jsonl`.

Greenshift adds `endpointConfigName` and `fleetId` to `eventMetadata` (our rule): during a
canary they say which fleet answered, so the new fleet's answers can be compared with the old.
A body larger than the data plane can hold (dataplane/config.py, CAPTURE_BODY_BYTES) is captured
cut, and its side says so: `"truncated": true` and `"size"`, the body's whole size in bytes (our
rule too: a cut record is never passed off as a whole one).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Any, NamedTuple

EVENT_VERSION = "0"


@dataclass(frozen=True)
class CaptureRule:
    """One fleet's DataCaptureConfig, as the data plane applies it."""

    percent: float  # InitialSamplingPercentage, 0-100
    destination: str  # DestinationS3Uri: file:// or s3://
    capture_input: bool = True
    capture_output: bool = True
    csv_types: tuple[str, ...] = ()
    json_types: tuple[str, ...] = ()

    @property
    def per_10000(self) -> int:
        """The sampling threshold for HAProxy's `rand(10000)` (0.01 % resolution)."""
        return max(0, min(10000, round(self.percent * 100)))


def rule_from_config(config: dict[str, Any] | None) -> CaptureRule | None:
    """The rule of a CreateEndpointConfig's `DataCaptureConfig`; None when absent or
    `EnableCapture` is false (SageMaker's default for EnableCapture is true)."""
    if not config or config.get("EnableCapture") is False:
        return None
    modes = {o.get("CaptureMode") for o in config.get("CaptureOptions") or []}
    header = config.get("CaptureContentTypeHeader") or {}
    return CaptureRule(
        percent=float(config.get("InitialSamplingPercentage", 0)),
        destination=str(config["DestinationS3Uri"]).rstrip("/"),
        capture_input="Input" in modes,
        capture_output="Output" in modes,
        csv_types=tuple(header.get("CsvContentTypes") or ()),
        json_types=tuple(header.get("JsonContentTypes") or ()),
    )


class Captured(NamedTuple):
    """One sampled invocation as the data plane hands it over (capture.lua's line). A named
    tuple: built once per record on the writer's hot path (a frozen dataclass costs 3 µs)."""

    backend: str
    event_id: str
    time_ms: int
    status: int
    input_type: str
    output_type: str
    custom_attributes: str
    inference_id: str
    input_b64: str | None  # the body as the data plane sent it (base64); None: not captured
    output_b64: str | None
    input_size: int = -1  # the body's declared size; more than len(input): captured cut
    output_size: int = -1


FIELDS = 11


def _size(text: str) -> int | None:
    """A size field: None when that side was not captured ("-", or empty: no variable)."""
    return None if text in ("", "-") else int(text)


def _b64(text: str) -> bytes:
    return base64.b64decode(text) if text else b""


@lru_cache(maxsize=1024)
def _header(text: str) -> str:
    """A header from its base64 (content types repeat: decoded once)."""
    return _b64(text).decode("latin-1")


def _checked(text: str) -> str:
    """Base64 kept as it came (a BASE64 side is written without decoding it), once checked."""
    if len(text) % 4 or not _BASE64.fullmatch(text):
        raise ValueError("not base64")
    return text


_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def parse_line(line: str, event_id: str = "") -> Captured | None:
    """capture.lua's tab-separated line (everything free-form in it is base64): backend, time
    (ms), status; input content type, custom attributes, inference id, input's declared size
    (one request-time variable); output content type and declared size; the two bodies. The
    event id is the writer's (`event_ids`). None if malformed (the writer counts those)."""
    f = line.rstrip("\n").split("\t")
    if len(f) != FIELDS:
        return None
    try:
        in_size, out_size = _size(f[6]), _size(f[8])
        return Captured(
            backend=f[0],
            event_id=event_id,
            time_ms=int(f[1]),
            status=int(f[2] or 0),
            input_type=_header(f[3]),
            output_type=_header(f[7]),
            custom_attributes=_b64(f[4]).decode("latin-1"),
            inference_id=_b64(f[5]).decode("latin-1"),
            input_b64=_checked(f[9]) if in_size is not None else None,
            output_b64=_checked(f[10]) if out_size is not None else None,
            input_size=-1 if in_size is None else in_size,
            output_size=-1 if out_size is None else out_size,
        )
    except (ValueError, binascii.Error):
        return None


def event_ids() -> Iterator[str]:
    """Event ids in UUID version 4 form: 74 random bits per writer, then a counter, so unique
    without a random draw per record (HAProxy's %[uuid] cost 4k instructions per request)."""
    base = uuid.uuid4().hex
    prefix = f"{base[:8]}-{base[8:12]}-4{base[13:16]}-{'89ab'[int(base[16], 16) % 4]}{base[17:20]}-"
    start = int(base[20:], 16) & 0xFFFFFFFF
    for n in itertools.count(start):
        yield f"{prefix}{n & 0xFFFFFFFFFFFF:012x}"


def _encoding(content_type: str, rule: CaptureRule) -> str:
    base_type = content_type.split(";", 1)[0].strip()
    if base_type in rule.csv_types:
        return "CSV"
    if base_type in rule.json_types:
        return "JSON"
    return "BASE64"


@lru_cache(maxsize=256)
def _second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def inference_time(time_ms: int) -> str:
    """`2026-12-02T01:02:03.456Z` (formatted once per second: the writer's hot path)."""
    return f"{_second(time_ms // 1000)}{time_ms % 1000:03d}Z"


_quote = json.encoder.encode_basestring_ascii


def _side_text(mode: str, content_type: str, b64: str, size: int, rule: CaptureRule) -> str:
    encoding = _encoding(content_type, rule)
    if encoding == "BASE64":
        data = f'"{b64}"'  # base64 needs no JSON escaping, nor decoding and encoding again
        length = len(b64) // 4 * 3 - b64[-2:].count("=")
    else:
        raw = _b64(b64)
        data, length = _quote(raw.decode("utf-8", "replace")), len(raw)
    cut = f',"truncated":true,"size":{size}' if size > length else ""
    return (
        f'{{"observedContentType":{_quote(content_type)},"mode":"{mode}","data":{data},'
        f'"encoding":"{encoding}"{cut}}}'
    )


def record_text(captured: Captured, rule: CaptureRule, config_name: str, fleet_id: str) -> str:
    """The SageMaker capture record of one invocation, as one JSON line, written directly: the
    writer's hot path (no dict is built, a base64 side is never decoded and encoded again).
    tests/unit/test_capture.py holds it equal to a plain dict-building reference."""
    sides = []
    if rule.capture_input and captured.input_b64 is not None:
        side = _side_text(
            "INPUT", captured.input_type, captured.input_b64, captured.input_size, rule
        )
        sides.append(f'"endpointInput":{side}')
    if rule.capture_output and captured.output_b64 is not None:
        side = _side_text(
            "OUTPUT", captured.output_type, captured.output_b64, captured.output_size, rule
        )
        sides.append(f'"endpointOutput":{side}')
    meta = (
        f'"eventId":{_quote(captured.event_id)},'
        f'"inferenceTime":"{inference_time(captured.time_ms)}",'
        f'"endpointConfigName":{_quote(config_name)},"fleetId":{_quote(fleet_id)}'
    )
    if captured.inference_id:
        meta += f',"inferenceId":{_quote(captured.inference_id)}'
    if captured.custom_attributes:
        meta += f',"customAttributes":[{_quote(captured.custom_attributes)}]'
    return (
        f'{{"captureData":{{{",".join(sides)}}},"eventMetadata":{{{meta}}},'
        f'"eventVersion":"{EVENT_VERSION}"}}'
    )


def relative_path(endpoint: str, variant: str, time_ms: int, file_id: str) -> PurePosixPath:
    """SageMaker's layout below the destination: one file per batch and hour directory."""
    when = datetime.fromtimestamp(time_ms / 1000, UTC)
    name = when.strftime("%M-%S-") + f"{when.microsecond // 1000:03d}-{file_id}.jsonl"
    return PurePosixPath(endpoint, variant, when.strftime("%Y/%m/%d/%H"), name)


def dumps(rec: dict[str, Any]) -> str:
    return json.dumps(rec, separators=(",", ":"))
