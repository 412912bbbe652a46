"""The log shipper's cost: first poll over N instances' logs, an idle poll, one new line.

    .venv/bin/python -m bench.logs_bench

An idle poll must cost little (it runs every second in the API process): it only lists
`<home>/instances/` and stats each `server.log`.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from greenshift.logs.shipper import LogShipper
from greenshift.logs.store import SqliteLogStore

LINES = 1000
POLLS = 200


def measure(root: Path, instances: int) -> str:
    store = SqliteLogStore(root / f"logs-{instances}.db")
    home = root / f"home-{instances}" / "instances"
    for i in range(instances):
        folder = home / f"ep{i}.AllTraffic.abcdef12.0"
        folder.mkdir(parents=True)
        (folder / "server.log").write_text("".join(f"line {n}\n" for n in range(LINES)))
    shipper = LogShipper(store, home, retention_ms=86_400_000, max_bytes_per_stream=10**9)
    t = time.perf_counter()
    shipped = shipper.poll()
    first = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(POLLS):
        shipper.poll()
    idle = (time.perf_counter() - t) / POLLS
    log = home / "ep0.AllTraffic.abcdef12.0" / "server.log"
    t = time.perf_counter()
    for n in range(POLLS):
        with log.open("a") as f:
            f.write(f"new line {n}\n")
        shipper.poll()
    one = (time.perf_counter() - t) / POLLS
    store.close()
    return (
        f"{instances:3d} instances: first poll {shipped} events in {first * 1000:.1f} ms; "
        f"idle poll {idle * 1000:.2f} ms; poll with one new line {one * 1000:.2f} ms"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for n in (8, 64):
            print(measure(Path(tmp), n))


if __name__ == "__main__":
    main()
