"""The benchmark scripts' `--write` rewrites its own section's prose and keeps the figures
bench/run_all marked in it."""

from __future__ import annotations

from pathlib import Path

from bench.report_doc import replace_section

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
