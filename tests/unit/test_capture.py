"""Data capture's pure rules: the DataCaptureConfig -> rule, capture.lua's line, SageMaker's
record and layout; reading records back and `greenshift capture`."""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from greenshift.capture.reading import read_records, stats_path
from greenshift.capture.rules import (
    Captured,
    CaptureRule,
    event_ids,
    inference_time,
    parse_line,
    record_text,
    relative_path,
    rule_from_config,
)
from greenshift.capture.source import FleetCapture
from greenshift.capture.writer import CaptureWriter
from greenshift.cli.capture import parse_since
from greenshift.cli.main import cli

CONFIG = {
    "InitialSamplingPercentage": 20,
    "DestinationS3Uri": "file:///tmp/cap/",
    "CaptureOptions": [{"CaptureMode": "Input"}],
    "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def record(captured: Captured, rule: CaptureRule, config_name: str, fleet_id: str) -> Any:
    """The record the writer writes, parsed."""
    return json.loads(record_text(captured, rule, config_name, fleet_id))


def reference_record(
    captured: Captured, rule: CaptureRule, config_name: str, fleet_id: str
) -> dict[str, Any]:
    """SageMaker's capture record built the plain way, as a dict from the decoded bodies: the
    reference the writer's direct record_text is held to."""

    def side(mode: str, content_type: str, b64_data: str, size: int) -> dict[str, Any]:
        data = base64.b64decode(b64_data)
        base_type = content_type.split(";", 1)[0].strip()
        encoding = (
            "CSV"
            if base_type in rule.csv_types
            else "JSON"
            if base_type in rule.json_types
            else "BASE64"
        )
        text = b64_data if encoding == "BASE64" else data.decode("utf-8", "replace")
        found: dict[str, Any] = {
            "observedContentType": content_type,
            "mode": mode,
            "data": text,
            "encoding": encoding,
        }
        if size > len(data):
            found["truncated"] = True
            found["size"] = size
        return found

    sides: dict[str, Any] = {}
    if rule.capture_input and captured.input_b64 is not None:
        sides["endpointInput"] = side(
            "INPUT", captured.input_type, captured.input_b64, captured.input_size
        )
    if rule.capture_output and captured.output_b64 is not None:
        sides["endpointOutput"] = side(
            "OUTPUT", captured.output_type, captured.output_b64, captured.output_size
        )
    meta: dict[str, Any] = {
        "eventId": captured.event_id,
        "inferenceTime": inference_time(captured.time_ms),
        "endpointConfigName": config_name,
        "fleetId": fleet_id,
    }
    if captured.inference_id:
        meta["inferenceId"] = captured.inference_id
    if captured.custom_attributes:
        meta["customAttributes"] = [captured.custom_attributes]
    return {"captureData": sides, "eventMetadata": meta, "eventVersion": "0"}


def line_of(*old: str) -> tuple[str, str]:
    """capture.lua's line for these fields (config.py, capture_rules, orders them so), and the
    event id the writer gives it. `old`: backend, event id, time (ms), status, input and output
    content types, custom attributes, inference id, input and output sizes, the two bodies."""
    assert len(old) == 12
    backend, event_id, time_ms, status, in_type, out_type, attrs, inference = old[:8]
    in_size, out_size = old[8:10]
    fields = [backend, time_ms, status, in_type, attrs, inference, in_size, out_type, out_size,
              *old[10:]]  # fmt: skip
    return "\t".join(fields), event_id


def test_rule_from_config_follows_sagemakers_defaults() -> None:
    rule = rule_from_config(CONFIG)
    assert rule == CaptureRule(20.0, "file:///tmp/cap", True, False, ("text/csv",), ())
    assert rule.per_10000 == 2000
    assert rule_from_config({**CONFIG, "EnableCapture": False}) is None
    assert rule_from_config(None) is None
    assert CaptureRule(0.01, "x").per_10000 == 1


def test_line_to_record_in_sagemakers_format() -> None:
    line, event_id = line_of(
        "f.Shop.A.v2", "id-1", "1764633600123", "200", b64("text/csv"),
        b64("application/json"), b64("trace=1"), "", "3", "7", b64("1,2"), b64('{"a":1}')
    )  # fmt: skip
    captured = parse_line(line + "\n", event_id)
    assert captured is not None
    rule = CaptureRule(100, "file:///x", csv_types=("text/csv",))
    rec = record(captured, rule, "cfg-v2", "Shop.A.v2")
    assert rec == {
        "captureData": {
            "endpointInput": {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": "1,2",
                "encoding": "CSV",
            },
            "endpointOutput": {
                "observedContentType": "application/json",
                "mode": "OUTPUT",
                "data": b64('{"a":1}'),
                "encoding": "BASE64",
            },
        },
        "eventMetadata": {
            "eventId": "id-1",
            "inferenceTime": "2025-12-02T00:00:00.123Z",
            "endpointConfigName": "cfg-v2",
            "fleetId": "Shop.A.v2",
            "customAttributes": ["trace=1"],
        },
        "eventVersion": "0",
    }
    assert str(relative_path("Shop", "A", 1764633600123, "b1")) == (
        "Shop/A/2025/12/02/00/00-00-123-b1.jsonl"
    )
    assert parse_line("too\tfew") is None
    assert parse_line(line.replace("\t200\t", "\tx\t")) is None


def _write(root: Path, variant: str, when: datetime, config: str, answer: str) -> None:
    ms = int(when.timestamp() * 1000)
    rel = relative_path("Shop", variant, ms, config)
    fields = ["f.x", "e", str(ms), "200", "", "", "", "", "2", str(len(answer))]
    captured = parse_line(*line_of(*fields, b64("{}"), b64(answer)))
    assert captured is not None
    rec = record(captured, CaptureRule(100, "file:///x"), config, "x")
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec) + "\n")


def test_reading_back_filters_by_variant_and_time_and_the_cli_prints_both_fleets(
    tmp_path: Path,
) -> None:
    _write(tmp_path, "A", datetime(2026, 1, 1, 10, 5, tzinfo=UTC), "cfg-v1", '{"v":1}')
    _write(tmp_path, "A", datetime(2026, 1, 1, 12, 5, tzinfo=UTC), "cfg-v2", '{"v":2}')
    _write(tmp_path, "B", datetime(2026, 1, 1, 12, 6, tzinfo=UTC), "cfg-v2", '{"v":3}')
    since = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert [r["eventMetadata"]["endpointConfigName"] for r in read_records(tmp_path, "Shop")] == [
        "cfg-v1",
        "cfg-v2",
        "cfg-v2",
    ]
    assert len(list(read_records(tmp_path, "Shop", "A", since))) == 1
    assert len(list(read_records(tmp_path, "Shop", None, since))) == 2

    home = ["--home", str(tmp_path / "home")]
    out = CliRunner().invoke(
        cli, ["capture", "Shop", "--variant", "A", "--destination", f"file://{tmp_path}", *home]
    )
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines == [
        '2026-01-01T10:05:00.000Z  A  cfg-v1  {}  ->  {"v":1}',
        '2026-01-01T12:05:00.000Z  A  cfg-v2  {}  ->  {"v":2}',
    ]


def test_since_takes_an_age_or_a_time() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_since("15m", now) == datetime(2026, 1, 1, 11, 45, tzinfo=UTC)
    assert parse_since("2026-01-01T10:00:00", now) == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert parse_since(None) is None


def test_a_body_captured_cut_says_so_and_a_side_not_captured_is_absent() -> None:
    """The data plane holds at most CAPTURE_BODY_BYTES of a body: the record of a larger one
    carries the part it got, `truncated` and the whole size, never a cut body passed off as
    whole; an empty size field (a streamed answer) means no output side at all."""
    part = "x" * 100
    line, _ = line_of(
        "f.x", "e", "1764633600123", "200", b64("application/json"), "", "", "",
        "102400", "", b64(part), ""
    )  # fmt: skip
    captured = parse_line(line)
    assert captured is not None
    rule = CaptureRule(100, "file:///x", json_types=("application/json",))
    rec = record(captured, rule, "c", "x")
    assert rec["captureData"] == {
        "endpointInput": {
            "observedContentType": "application/json",
            "mode": "INPUT",
            "data": part,
            "encoding": "JSON",
            "truncated": True,
            "size": 102400,
        }
    }
    whole = parse_line(line.replace("\t102400\t", "\t100\t"))
    assert whole is not None
    untruncated = record(whole, CaptureRule(100, "file:///x"), "c", "x")
    assert "truncated" not in untruncated["captureData"]["endpointInput"]


def test_the_writers_fast_record_text_is_the_record() -> None:
    """record_text (the writer's hot path: no dict, base64 sides never decoded) parses to
    exactly the reference record's dict, for text and base64 sides, cut bodies, custom
    attributes, an inference id, escapes and non-UTF-8 bytes, a side off and a side not
    captured."""
    odd = b'{"q": "\\"\xff\n\xc3\xa9"}'
    rules = [
        CaptureRule(100, "file:///x", json_types=("application/json",)),
        CaptureRule(100, "file:///x", csv_types=("text/csv",)),
        CaptureRule(100, "file:///x", capture_output=False),
    ]
    lines = [
        ["f.a", "e1", "1764633600123", "200", b64("application/json; charset=utf-8"),
         b64("text/csv"), b64('trace="1"'), b64("id-\t1"), "3", "5", b64("1,2"), b64("a,b\nc")],
        ["f.a", "e2", "1764633600999", "200", b64("application/json"), b64("application/json"),
         "", "", str(len(odd) + 50), str(len(odd)), base64.b64encode(odd).decode(),
         base64.b64encode(odd).decode()],
        ["f.a", "e3", "1764633601000", "200", "", "", "", "", "0", "", "", ""],
        ["f.a", "e4", "1764633601000", "200", b64("x/y"), b64("x/y"), "", "", "4", "1",
         b64("abcd"), b64("z")],
    ]  # fmt: skip
    checked = 0
    for fields in lines:
        captured = parse_line(*line_of(*fields))
        assert captured is not None
        for rule in rules:
            assert record(captured, rule, "cfg", "a") == reference_record(
                captured, rule, "cfg", "a"
            )
            checked += 1
    assert checked == 12
    assert parse_line(line_of(*lines[3][:10], "ab=c", "z")[0]) is None  # not base64


def test_the_cli_shows_the_data_planes_losses(tmp_path: Path) -> None:
    """`greenshift capture --stats` prints the writer's counts; listing records warns on stderr
    when the data plane lost any, so a loss is never silent to the user."""
    home = tmp_path / "home"
    runner = CliRunner()
    out = runner.invoke(cli, ["capture", "--stats", "--home", str(home)])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("no capture counts yet")
    path = stats_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = {"written": 970, "lost": 30, "dropped": 25, "dropped_in_haproxy": 20, "cut": 0,
              "malformed": 5, "unrouted": 0, "failed": 0, "nolines": 0, "heard_at": 0}  # fmt: skip
    path.write_text(json.dumps(counts))
    out = runner.invoke(cli, ["capture", "--stats", "--home", str(home)])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == [
        "records written 970, lost 30",
        "lost: dropped 25, dropped in haproxy 20, cut 0, malformed 5, unrouted 0, failed 0, "
        "without a line 0",
    ]
    dest = tmp_path / "capture"
    dest.mkdir()
    listing = ["capture", "Shop", "--destination", f"file://{dest}", "--home", str(home)]
    out = runner.invoke(cli, listing)
    assert out.exit_code == 0
    assert "warning: the data plane lost 30 capture records" in out.stderr


def test_event_ids_are_unique_uuid4s() -> None:
    ids = event_ids()
    taken = [next(ids) for _ in range(1000)]
    assert len(set(taken)) == 1000
    for found in taken[:3]:
        assert uuid.UUID(found).version == 4
        assert str(uuid.UUID(found)) == found
    assert next(event_ids())[:24] != taken[0][:24]  # another writer, another random prefix


def test_capture_rules_are_accepted_by_haproxy_with_and_without_sigv4(tmp_path: Path) -> None:
    """capture.lua is loaded per thread while the SigV4 action is in the shared Lua state:
    HAProxy takes both together, for every combination of capture options."""
    from greenshift import binaries
    from greenshift.dataplane.config import Listen, Paths, render, render_picks, render_slots
    from greenshift.dataplane.desired import compute
    from greenshift.dataplane.sigv4 import write_lua
    from tests.unit.test_haproxy_config import INSTANCES, ROUTING

    captures = {
        "blue": CaptureRule(100, "file:///x"),
        "green": CaptureRule(20, "file:///x", capture_input=False),
        "bee": CaptureRule(50, "file:///x", capture_output=False),
    }
    state = compute(ROUTING, INSTANCES, captures=captures)
    paths = Paths(tmp_path)
    paths.slots_map.write_text(render_slots(state))
    paths.picks_map.write_text(render_picks(state))
    write_lua(paths.sigv4_lua, {"AKID": "secret"}, "us-east-1")
    checked_configs = 0
    for sigv4 in (False, True):
        listen = Listen("127.0.0.1", 1, 2, "123456789012", sigv4=sigv4)
        text = render(state, paths, listen)
        assert text.count("lua.gs_out") == 3
        assert "lua-load-per-thread" in text
        paths.config.write_text(text)
        checked = subprocess.run(
            [binaries.haproxy(), "-c", "-f", str(paths.config)], capture_output=True, timeout=30
        )
        assert checked.returncode == 0, checked.stderr.decode()
        assert b"WARNING" not in checked.stderr, checked.stderr.decode()
        checked_configs += 1
    assert checked_configs == 2


class _TwoFleets:
    """FleetCaptures' one method, for a canary's blue and green: one endpoint and variant."""

    def __init__(self, dest: Path) -> None:
        rule = CaptureRule(100, f"file://{dest}", json_types=("application/json",))
        fleets = ("Shop.A.v1", "Shop.A.v2")
        self.fleets = {f: FleetCapture(f, "Shop", "A", f"cfg-{f[-2:]}", rule) for f in fleets}

    def get(self, fleet_id: str) -> FleetCapture | None:
        return self.fleets.get(fleet_id)


def test_two_fleets_answering_in_one_millisecond_are_both_written(tmp_path: Path) -> None:
    """Blue's and green's records share a directory (endpoint/variant/hour); in one flush, the
    first of each can have the same millisecond, which named both files alike (a record lost,
    counted as written: the CI failure of the capture canary tests)."""
    dest = tmp_path / "capture"
    writer = CaptureWriter(tmp_path / "capture.sock", _TwoFleets(dest))  # type: ignore[arg-type]
    for i in range(4):
        fleet = f"f.Shop.A.v{1 + i % 2}"
        body = b64(json.dumps({"i": i}))
        line, _ = line_of(
            fleet, "-", "1764633600123", "200", b64("application/json"),
            b64("application/json"), "", "", "7", "7", body, body
        )  # fmt: skip
        writer.pending.append(line + "\n")
    assert writer.flush() == 4
    found = list(read_records(dest, "Shop"))
    assert sorted(json.loads(r["captureData"]["endpointInput"]["data"])["i"] for r in found) == [
        0, 1, 2, 3
    ]  # fmt: skip
    assert {r["eventMetadata"]["fleetId"] for r in found} == {"Shop.A.v1", "Shop.A.v2"}
    assert len(list(dest.rglob("*.jsonl"))) == 2
