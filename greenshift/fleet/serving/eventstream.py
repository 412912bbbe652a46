"""AWS event-stream framing (`application/vnd.amazon.eventstream`) for
`InvokeEndpointWithResponseStream`, standard library only (this package runs in the model's own
environment).

A message is: total length (4 bytes), headers length (4), CRC32 of those 8 bytes (4), the headers,
the payload, CRC32 of everything before it (4); big-endian. A header is: name length (1), name,
type 7 (string), value length (2), value. botocore's `EventStreamBuffer` checks both CRCs, reads
`:message-type` (`event` or `exception`) and `:event-type` / `:exception-type`, and maps the
event type to a member of the `ResponseStream` union: `PayloadPart` (payload = the part's bytes),
`ModelStreamError` and `InternalStreamFailure` (payload = JSON with `Message`, `ErrorCode`).
"""

from __future__ import annotations

import json
import struct
import zlib

CONTENT_TYPE = "application/vnd.amazon.eventstream"
# The header of an event-stream answer that carries its parts' own content type (boto3's
# `ContentType`): the answer's Content-Type is the event stream's.
PARTS_CONTENT_TYPE_HEADER = "X-Amzn-SageMaker-Content-Type"
STRING = 7


def _headers(pairs: tuple[tuple[str, str], ...]) -> bytes:
    out = bytearray()
    for name, value in pairs:
        raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
        out += struct.pack("!B", len(raw_name)) + raw_name
        out += struct.pack("!BH", STRING, len(raw_value)) + raw_value
    return bytes(out)


def message(headers: tuple[tuple[str, str], ...], payload: bytes) -> bytes:
    """One event-stream message."""
    head = _headers(headers)
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack("!II", total, len(head))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + head + payload
    return body + struct.pack("!I", zlib.crc32(body))


_PART_HEADERS = (
    (":event-type", "PayloadPart"),
    (":content-type", "application/octet-stream"),
    (":message-type", "event"),
)


def payload_part(data: bytes) -> bytes:
    """A `PayloadPart` event carrying `data` as its `Bytes`."""
    return message(_PART_HEADERS, data)


def stream_error(exception_type: str, message_text: str, error_code: str | None = None) -> bytes:
    """An exception event: botocore raises `EventStreamError` with code `exception_type`
    (`ModelStreamError`, `InternalStreamFailure`) from the iteration."""
    body: dict[str, str] = {"Message": message_text}
    if error_code is not None:
        body["ErrorCode"] = error_code
    headers = (
        (":exception-type", exception_type),
        (":content-type", "application/json"),
        (":message-type", "exception"),
    )
    return message(headers, json.dumps(body).encode("utf-8"))


def whole_messages(data: bytes) -> tuple[bytes, bytes]:
    """`data` (the start of a stream of messages) split after its last whole message: (the whole
    messages, the rest). Reads only each prelude's total length; checks nothing else."""
    end = 0
    while len(data) - end >= 4:
        (total,) = struct.unpack_from("!I", data, end)
        if total < 16 or len(data) - end < total:
            break
        end += total
    return data[:end], data[end:]
