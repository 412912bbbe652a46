"""One place that rewrites a section of docs/benchmarks.md for the benchmark scripts' `--write`."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
_MARKED = re.compile(r"<!-- run_all:begin [\w-]+ -->.*?<!-- run_all:end [\w-]+ -->", re.S)


def replace_section(heading: str, body: str, path: Path = DOC) -> None:
    """Make "## <heading>" hold `body`, keeping the blocks bench/run_all marked in it (the
    latest figures), or append the section when the document has none."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    found = pattern.search(text)
    kept = _MARKED.findall(found[0]) if found else []
    section = f"## {heading}\n\n{body.strip()}\n"
    section += "".join(f"\n{block}\n" for block in kept)
    if found:
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")


SUMMARY_HEADER = (
    "| benchmark | what | outcome | seconds | run (UTC) |",
    "| --- | --- | --- | ---: | --- |",
)
_SUMMARY_RUN = re.compile(r"^Run: (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", re.M)


def summary_rows(old: str, fresh: dict[str, list[str]], names: list[str]) -> list[str]:
    """The summary table of bench/run_all: each benchmark's `fresh` cells (name, what,
    outcome, seconds, run) where this run ran it, else its row in the `old` summary block, so
    a run of some benchmarks (`--only`, `--skip`) keeps the others' figures and says when each
    was taken. An old row without a run column takes the old block's "Run:" time."""
    old_run = _SUMMARY_RUN.search(old)
    rows: dict[str, list[str]] = {}
    for line in old.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] in names and len(cells) in (4, 5):
            rows[cells[0]] = cells if len(cells) == 5 else [*cells, old_run[1] if old_run else "?"]
    rows.update(fresh)
    return [*SUMMARY_HEADER, *("| " + " | ".join(rows[n]) + " |" for n in names if n in rows)]
