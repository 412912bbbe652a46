"""The benchmark scripts' `--write` rewrites its own section's prose and keeps the figures
bench/run_all marked in it."""

from __future__ import annotations

from pathlib import Path

from bench.report_doc import SUMMARY_HEADER, replace_section, summary_rows

DOC = """# Benchmarks

## Load

old prose

<!-- run_all:begin load -->
latest figures
<!-- run_all:end load -->

## Chaos

chaos prose
"""


def test_replaces_the_prose_and_keeps_the_marked_figures(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks.md"
    path.write_text(DOC)
    replace_section("Load", "new prose", path)
    text = path.read_text()
    assert "old prose" not in text
    assert "## Load\n\nnew prose\n" in text
    assert "<!-- run_all:begin load -->\nlatest figures\n<!-- run_all:end load -->" in text
    assert text.index("latest figures") < text.index("## Chaos")
    assert "chaos prose" in text


def test_appends_a_missing_section(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks.md"
    path.write_text(DOC)
    replace_section("Fuzz", "fuzz prose", path)
    text = path.read_text()
    assert text.rstrip().endswith("## Fuzz\n\nfuzz prose")
    assert "chaos prose" in text


OLD_SUMMARY = """
Machine: some CPU.
Run: 2026-11-26 22:54 UTC, 536 s in all.

| benchmark | what | outcome | seconds |
| --- | --- | --- | ---: |
| plan | planning | ok | 2 |
| workflow | overhead | ok | 41 |
| fuzz | malformed requests | failed (exit 1) | 96 |
"""


def test_a_partial_run_keeps_the_other_benchmarks_rows_and_says_when_each_ran() -> None:
    """bench/run_all --only workflow: the workflow row is the new one; plan and fuzz keep
    theirs, dated by the old block's run; a benchmark never run has no row."""
    fresh = {"workflow": ["workflow", "overhead", "ok", "94", "2026-12-07 19:15"]}
    rows = summary_rows(OLD_SUMMARY, fresh, ["plan", "workflow", "api", "fuzz"])
    assert rows == [
        *SUMMARY_HEADER,
        "| plan | planning | ok | 2 | 2026-11-26 22:54 |",
        "| workflow | overhead | ok | 94 | 2026-12-07 19:15 |",
        "| fuzz | malformed requests | failed (exit 1) | 96 | 2026-11-26 22:54 |",
    ]
    # The next partial run reads the dated rows back as they are.
    again = summary_rows("\n".join(rows), {}, ["plan", "workflow", "api", "fuzz"])
    assert again == rows
