"""Pure rules for turning appended bytes into log events."""

from __future__ import annotations

from greenshift.logs.model import MAX_EVENT_BYTES


def split_lines(data: bytes, max_bytes: int = MAX_EVENT_BYTES) -> tuple[list[str], int]:
    """The complete lines in `data` and how many bytes they used.

    A trailing partial line is not consumed (the writer has not finished it). Line ends may be
    `\\n` or `\\r\\n`; empty lines are dropped, since CloudWatch Logs has no empty events; a line
    longer than `max_bytes` becomes several events; bytes that are not UTF-8 are replaced.
    """
    end = data.rfind(b"\n")
    if end < 0:
        return [], 0
    lines: list[str] = []
    for raw in data[:end].split(b"\n"):
        lines.extend(_events_of(raw.rstrip(b"\r"), max_bytes))
    return lines, end + 1


def flush_partial(data: bytes, max_bytes: int = MAX_EVENT_BYTES) -> list[str]:
    """A partial line given up on (its writer went quiet): the events it makes."""
    return _events_of(data.rstrip(b"\r"), max_bytes)


def _events_of(raw: bytes, max_bytes: int) -> list[str]:
    out: list[str] = []
    while raw:
        cut = len(raw) if len(raw) <= max_bytes else _char_boundary(raw, max_bytes)
        text = raw[:cut].decode("utf-8", errors="replace")
        if text.strip():
            out.append(text)
        raw = raw[cut:]
    return out


def _char_boundary(raw: bytes, limit: int) -> int:
    """The largest cut <= limit that does not split a UTF-8 sequence."""
    cut = limit
    while cut > 0 and (raw[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut or limit


def is_replaced(size: int, inode: int, cursor_offset: int, cursor_inode: int) -> bool:
    """Whether the file at a path is no longer the one the cursor read: another inode
    (recreated) or shorter than what was already read (truncated)."""
    return inode != cursor_inode or size < cursor_offset
