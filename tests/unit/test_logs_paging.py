"""The pure rules of the logs package: line splitting, filter patterns, tokens and pages."""

from __future__ import annotations

import pytest

from greenshift.cli.logs import Tail, parse_duration
from greenshift.logs.errors import InvalidParameterException
from greenshift.logs.model import LogEvent, stream_for_instance
from greenshift.logs.paging import (
    events_page,
    filter_token,
    page_items,
    parse_events_token,
    parse_filter_token,
    plan_read,
    select_matches,
)
from greenshift.logs.patterns import compile_pattern
from greenshift.logs.tailing import flush_partial, is_replaced, split_lines


def ev(seq: int, message: str = "m", ts: int | None = None) -> LogEvent:
    return LogEvent(seq, "AllTraffic/x", ts if ts is not None else 1000 + seq, 1000 + seq, message)


# --- naming ---------------------------------------------------------------------------------


def test_stream_of_an_instance_id_is_variant_slash_instance() -> None:
    ref = stream_for_instance("ep1.AllTraffic.abcdef12.3")
    assert ref is not None
    assert ref.group == "/aws/sagemaker/Endpoints/ep1"
    assert ref.stream == "AllTraffic/ep1.AllTraffic.abcdef12.3"
    assert stream_for_instance("not-an-instance") is None
    assert stream_for_instance("a..b.c") is None


# --- splitting lines ------------------------------------------------------------------------


def test_complete_lines_are_split_and_a_partial_one_is_kept() -> None:
    lines, used = split_lines(b"one\r\ntwo\n\nthree")
    assert lines == ["one", "two"]
    assert used == len(b"one\r\ntwo\n\n")
    assert split_lines(b"no newline yet") == ([], 0)
    assert flush_partial(b"tail\r") == ["tail"]


def test_a_long_line_becomes_events_of_bounded_size_without_splitting_a_character() -> None:
    line = ("é" * 10).encode()  # 20 bytes, 2 per character
    lines, _ = split_lines(line + b"\n", max_bytes=7)
    assert "".join(lines) == "é" * 10
    assert all(len(x.encode()) <= 7 for x in lines)
    assert len(lines) == 4


def test_undecodable_bytes_are_replaced() -> None:
    assert split_lines(b"bad \xff byte\n")[0] == ["bad \ufffd byte"]


def test_a_shorter_file_or_another_inode_is_a_replaced_file() -> None:
    assert is_replaced(size=10, inode=1, cursor_offset=20, cursor_inode=1)
    assert is_replaced(size=30, inode=2, cursor_offset=20, cursor_inode=1)
    assert not is_replaced(size=30, inode=1, cursor_offset=20, cursor_inode=1)


# --- filter patterns ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "message", "expected"),
    [
        ("", "anything", True),
        ("ERROR", "[ERROR] boom", True),
        ("ERROR", "[error] boom", False),  # case-sensitive, as CloudWatch
        ("ERROR boom", "boom ERROR", True),  # every term, any order
        ("ERROR boom", "ERROR only", False),
        ('"Connection refused"', "x: Connection refused!", True),
        ('"Connection refused"', "refused Connection", False),
        ("?ERROR ?WARN", "WARN: disk", True),
        ("?ERROR ?WARN", "INFO: fine", False),
        ("ERROR -Retrying", "ERROR: Retrying in 1s", False),
        ("ERROR -Retrying", "ERROR: gave up", True),
        ("%ERR[0-9]+%", "code ERR42", True),
        ("%ERR[0-9]+%", "code ERR", False),
    ],
)
def test_filter_patterns_match_as_cloudwatch(pattern: str, message: str, expected: bool) -> None:
    assert compile_pattern(pattern)(message) is expected


@pytest.mark.parametrize("pattern", ['{ $.level = "error" }', "[ip, user]", '"open', "%(%"])
def test_unsupported_or_malformed_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidParameterException):
        compile_pattern(pattern)


# --- GetLogEvents tokens --------------------------------------------------------------------


def test_plan_read_without_a_token_reads_the_newest_or_from_the_head() -> None:
    assert plan_read(None, False, last_seq=41) == ("backward", 42)
    assert plan_read(None, True, last_seq=41) == ("forward", 0)
    assert plan_read("f/00000000000000000007", False, 41) == ("forward", 7)
    assert plan_read("b/00000000000000000007", True, 41) == ("backward", 7)
    with pytest.raises(InvalidParameterException):
        parse_events_token("x/12")


def test_tokens_of_a_page_point_past_its_ends_and_repeat_at_the_end() -> None:
    page, forward, backward = events_page("forward", 0, [ev(3), ev(4)])
    assert [e.seq for e in page] == [3, 4]
    assert parse_events_token(forward) == ("forward", 4)
    assert parse_events_token(backward) == ("backward", 3)
    # At the end of the stream the forward token comes back unchanged (paginators stop).
    assert events_page("forward", 4, [])[1] == forward
    # At the beginning, the backward token does.
    assert events_page("backward", 3, [])[2] == backward


def test_a_page_keeps_to_the_byte_limit_from_its_bound() -> None:
    events = [ev(i, "x" * 74) for i in range(1, 6)]  # 100 bytes each with the overhead
    page, forward, _ = events_page("forward", 0, events, max_bytes=250)
    assert [e.seq for e in page] == [1, 2]
    assert parse_events_token(forward) == ("forward", 2)
    page, _, backward = events_page("backward", 6, events, max_bytes=250)
    assert [e.seq for e in page] == [4, 5]
    assert parse_events_token(backward) == ("backward", 4)


# --- FilterLogEvents ------------------------------------------------------------------------


def test_filter_token_round_trips_and_rejects_garbage() -> None:
    assert parse_filter_token(filter_token((123, 7))) == (123, 7)
    with pytest.raises(InvalidParameterException):
        parse_filter_token("!!!")


def test_select_matches_stops_before_the_match_it_cannot_take() -> None:
    events = [ev(1, "a"), ev(2, "b"), ev(3, "a"), ev(4, "a")]
    matched, position, stopped = select_matches(events, lambda m: m == "a", 2, 10_000)
    assert [e.seq for e in matched] == [1, 3]
    assert position == (events[2].timestamp, 3)
    assert stopped
    matched, position, stopped = select_matches(events, lambda m: m == "b", 5, 10_000)
    assert [e.seq for e in matched] == [2]
    assert position == (events[3].timestamp, 4)
    assert not stopped


# --- listings -------------------------------------------------------------------------------


def test_listing_pages_follow_the_sort_key_in_both_directions() -> None:
    items = ["c", "a", "d", "b", "e"]
    first, token = page_items(items, lambda s: (s,), None, 2)
    assert first == ["a", "b"] and token
    second, token = page_items([*items, "aa"], lambda s: (s,), token, 2)
    assert second == ["c", "d"], "an item added before the marker does not shift the pages"
    last, token = page_items(items, lambda s: (s,), token, 2)
    assert last == ["e"] and token is None
    down, token = page_items(items, lambda s: (s,), None, 3, descending=True)
    assert down == ["e", "d", "c"]
    assert page_items(items, lambda s: (s,), token, 3, descending=True) == (["b", "a"], None)


# --- the CLI's pure parts -------------------------------------------------------------------


def test_durations() -> None:
    assert parse_duration("30s") == 30
    assert parse_duration("1h30m") == 5400
    assert parse_duration("2d") == 172800
    for bad in ("", "10", "5 minutes", "m10"):
        with pytest.raises(Exception, match="not a duration"):
            parse_duration(bad)


def test_tail_prints_each_event_once_across_reads_at_the_same_millisecond() -> None:
    tail = Tail(None)
    first = [{"eventId": "1", "timestamp": 5}, {"eventId": "2", "timestamp": 5}]
    assert tail.fresh(first) == first
    assert tail.start_ms == 5
    again = [*first, {"eventId": "3", "timestamp": 5}]
    assert [e["eventId"] for e in tail.fresh(again)] == ["3"]
    later = [*again, {"eventId": "4", "timestamp": 9}]
    assert [e["eventId"] for e in tail.fresh(later)] == ["4"]
    assert tail.fresh([{"eventId": "4", "timestamp": 9}]) == []
