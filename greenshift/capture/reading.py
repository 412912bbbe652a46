"""Reading captured records back (`greenshift capture`): walk SageMaker's layout below a
`file://` destination, filter by variant and time, and show each record's input and output next
to the config that answered, so a canary's old and new fleet answers can be compared."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATS_FILE = "capture-stats.json"  # in the data plane's directory, beside capture.sock


def stats_path(home: Path) -> Path:
    """Where the capture writer keeps its counts (CaptureWriter.stats_path)."""
    return home / "dataplane" / STATS_FILE


def read_stats(home: Path) -> dict[str, Any] | None:
    """The data plane's capture counts (written, lost and how), None before its first flush."""
    try:
        found: dict[str, Any] = json.loads(stats_path(home).read_text())
    except (OSError, ValueError):
        return None
    return found


def render_stats(stats: dict[str, Any]) -> list[str]:
    """The counts as `greenshift capture --stats` prints them, losses first when there are."""
    lost = int(stats.get("lost", 0))
    lines = [f"records written {stats.get('written', 0)}, lost {lost}"]
    if lost:
        kinds = ("dropped", "dropped_in_haproxy", "cut", "malformed", "unrouted", "failed")
        lines.append(
            "lost: "
            + ", ".join(f"{k.replace('_', ' ')} {stats.get(k, 0)}" for k in kinds)
            + f", without a line {stats.get('nolines', 0)}"
        )
    heard = float(stats.get("heard_at") or 0)
    if heard:
        when = datetime.fromtimestamp(heard, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"HAProxy's capture sender last heard at {when} (it reports every second)")
    return lines


def destination_dir(uri: str) -> Path:
    if not uri.startswith("file://"):
        raise ValueError(f"only file:// destinations can be read back here, not {uri!r}")
    return Path(uri.removeprefix("file://"))


def inference_time(rec: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(rec["eventMetadata"]["inferenceTime"].replace("Z", "+00:00"))


def read_records(
    root: Path, endpoint: str, variant: str | None = None, since: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Records under `<root>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl`, oldest first. Hour
    directories before `since` are skipped without being read."""
    base = root / endpoint
    variants = [base / variant] if variant else sorted(p for p in base.glob("*") if p.is_dir())
    found: list[dict[str, Any]] = []
    for vdir in variants:
        for path in vdir.glob("*/*/*/*/*.jsonl"):
            if since is not None:
                y, m, d, h = path.parent.relative_to(vdir).parts
                hour = datetime(int(y), int(m), int(d), int(h), tzinfo=UTC)
                if hour.timestamp() + 3600 <= since.timestamp():
                    continue
            for line in path.read_text().splitlines():
                rec = json.loads(line)
                if since is None or inference_time(rec) >= since:
                    rec.setdefault("eventMetadata", {})["variant"] = vdir.name
                    found.append(rec)
    found.sort(key=inference_time)
    return iter(found)


def _data(side: dict[str, Any] | None) -> str:
    if side is None:
        return "-"
    if side.get("encoding") == "BASE64":
        return base64.b64decode(side["data"]).decode("utf-8", "replace")
    return str(side["data"])


def render_line(rec: dict[str, Any], width: int = 60) -> str:
    """time, variant, config, input -> output (decoded, cut to `width`)."""
    meta = rec["eventMetadata"]
    data = rec.get("captureData", {})
    given = _data(data.get("endpointInput"))[:width]
    answer = _data(data.get("endpointOutput"))[:width]
    return (
        f"{meta['inferenceTime']}  {meta.get('variant', '-')}  "
        f"{meta.get('endpointConfigName', '-')}  {given}  ->  {answer}"
    )
