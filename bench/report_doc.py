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
