"""The access-log line the HAProxy config emits, parsed and aggregated into SageMaker metrics."""

from __future__ import annotations

from greenshift.metrics.collector import SAMPLE_PER_SECOND, Aggregator, parse_line, split_lines
from greenshift.metrics.prometheus import render


def configs(backend: str) -> tuple[str, str] | None:
    return {"f.Shop.A.blue": ("Shop", "cfg-1")}.get(backend)


def test_parse_line() -> None:
    ok = parse_line("GS2 f.Shop.A.blue 200 3 4 0 A shop\n")
    assert ok is not None and (ok.status, ok.model_ms, ok.total_ms) == (200, 3, 4)
    # A model 500 rewritten to 424 ModelError counts as the model's 500.
    err = parse_line("GS2 f.Shop.A.blue 424 2 2 500 A shop")
    assert err is not None and err.status == 500
    assert parse_line("GS2 runtime 400 -1 0 0 - nope") is None  # never routed
    assert parse_line("garbage") is None
    assert parse_line("GS1 f.Shop.A.blue s 200 3 4 0 0 0 A shop") is None  # old format


def test_aggregate_one_second() -> None:
    agg = Aggregator(configs)
    for i in range(10):
        status = 500 if i < 2 else 200
        line = f"GS2 f.Shop.A.blue {status} {i} {i + 1} 0 A shop"
        request = parse_line(line)
        assert request is not None
        agg.add(request, second=100)
    agg.add(parse_line("GS2 f.Other.B.x 404 -1 5 0 B Other"), second=101)  # type: ignore[arg-type]
    points = agg.flush(before_second=101)
    by = {(p.metric_name, tuple(sorted(p.dimensions))): p for p in points}
    base = ("EndpointName", "VariantName")
    fleet = ("EndpointConfigName", "EndpointName", "VariantName")
    assert by[("Invocations", base)].count == 10
    assert by[("Invocations", base)].dimensions["EndpointName"] == "Shop"  # the registry's case
    e5 = by[("Invocation5XXErrors", fleet)]
    assert (e5.count, e5.sum, e5.minimum, e5.maximum) == (10, 2, 0, 1)
    latency = by[("ModelLatency", base)]
    assert (latency.minimum, latency.maximum, latency.sum) == (0, 9000, 45000)
    overhead = by[("OverheadLatency", base)]
    assert overhead.sum == 10 * 1000
    assert all(p.timestamp == 100 for p in points)
    # Second 101 is delivered once, later; a request without a model answer has no latency.
    later = agg.flush(before_second=102)
    assert {p.metric_name for p in later} == {
        "Invocations",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
    }
    assert agg.flush(before_second=102) == []
    text = render(agg.totals)
    assert 'sagemaker_invocations_total{EndpointName="Shop",VariantName="A"} 10' in text
    assert 'sagemaker_invocation_4xx_errors_total{EndpointName="Other",VariantName="B"} 1' in text


def test_samples_are_bounded() -> None:
    agg = Aggregator(configs)
    request = parse_line("GS2 f.Shop.A.blue 200 1 1 0 A shop")
    assert request is not None
    for _ in range(5000):
        agg.add(request, second=7)
    points = agg.flush(before_second=8)
    assert all(len(p.values) <= SAMPLE_PER_SECOND for p in points)
    assert next(p for p in points if p.metric_name == "ModelLatency").count == 5000


def test_identical_requests_counted_at_once_equal_one_by_one() -> None:
    """The collector adds n identical log lines with one call: same figures as n calls."""
    lines = ["GS2 f.Shop.A.blue 200 3 5 0 A shop"] * 300 + ["GS2 f.Shop.A.blue 424 7 7 503 A shop"]
    one_by_one, batched = Aggregator(configs, seed=1), Aggregator(configs, seed=1)
    for line in lines:
        one_by_one.add(parse_line(line), second=5)  # type: ignore[arg-type]
    batched.add(parse_line(lines[0]), second=5, n=300)  # type: ignore[arg-type]
    batched.add(parse_line(lines[-1]), second=5)  # type: ignore[arg-type]

    def summary(agg: Aggregator) -> list[tuple[object, ...]]:
        points = agg.flush(before_second=6)
        return sorted(
            (p.metric_name, sorted(p.dimensions.items()), p.count, p.sum, p.minimum, p.maximum)
            for p in points
        )

    assert summary(batched) == summary(one_by_one)
    invocations = [t.invocations for t in batched.totals.values()]
    assert invocations == [301, 301]


def test_stream_chunks_split_into_whole_lines() -> None:
    lines, tail = split_lines(b"", b"GS2 a 200\nGS2 b 2")
    assert (lines, tail) == ([b"GS2 a 200"], b"GS2 b 2")
    lines, tail = split_lines(tail, b"00\n")
    assert (lines, tail) == ([b"GS2 b 200"], b"")
