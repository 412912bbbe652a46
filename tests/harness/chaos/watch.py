"""What a trial watches while its fault lasts: the new fleet's share of the endpoint's traffic
(the registry's desired routing) and whether the hung process is still hung, sampled together.

A hung alarm evaluator must not let a deployment move traffic forward: `moved_on_stale` is that
judgement, pure, over the samples (tested on hand-made ones); `ShareWatch` takes them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from greenshift.registry.api import Registry
from tests.harness.chaos import killers


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since UpdateEndpoint returned
    share: float  # of the endpoint's traffic on fleets of any config but the old one
    hung: bool  # the stopped process was still stopped (nobody had replaced it yet)


def moved_on_stale(samples: list[Sample], hung_at: float, stale_seconds: float) -> list[str]:
    """Every rise of the new fleet's share seen while the hung evaluator's last evaluation was
    older than `stale_seconds` (it was stopped at `hung_at`, so nothing it judged is newer)."""
    found = []
    for before, after in pairwise(samples):
        if after.hung and after.at - hung_at > stale_seconds and after.share > before.share + 1e-9:
            found.append(
                f"traffic moved forward on stale alarms: {before.share:.2f} -> {after.share:.2f} "
                f"at t+{after.at:.1f}s, {after.at - hung_at:.1f}s after the evaluator hung"
            )
    return found


def held_on_stale(samples: list[Sample], hung_at: float, stale_seconds: float) -> int:
    """Samples where the new fleet carried traffic while the alarms were stale: the hold was
    really exercised (a trial whose deployment ended before the alarms went stale proves
    nothing)."""
    return sum(1 for s in samples if s.hung and s.at - hung_at > stale_seconds and s.share > 0)


def new_share(registry: Registry, endpoint: str, old_config: str) -> float:
    """The share of the endpoint's traffic on fleets not of `old_config` (weights across
    variants, shares within each)."""
    record = registry.get_routing(endpoint)
    if record is None:
        return 0.0
    configs = {f.fleet_id: f.config_name for f in registry.list_fleets(endpoint)}
    total = sum(v.weight for v in record.routing.variants) or 1.0
    share = 0.0
    for v in record.routing.variants:
        for f in v.fleets:
            if configs.get(f.fleet_id, old_config) != old_config:
                share += v.weight / total * f.share
    return share


class ShareWatch:
    """Samples `new_share` and the hung state every `every` seconds in a thread."""

    def __init__(
        self,
        registry: Registry,
        endpoint: str,
        old_config: str,
        since: float,
        every: float = 0.25,
    ) -> None:
        self.registry = registry
        self.endpoint = endpoint
        self.old_config = old_config
        self.since = since
        self.every = every
        self.samples: list[Sample] = []
        self.errors: list[str] = []  # failed reads (a few under load are harmless)
        self.stopped: dict[int, list[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="share-watch", daemon=True)

    def start(self) -> ShareWatch:
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        self._thread.join(10)
        return self.samples

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                share = new_share(self.registry, self.endpoint, self.old_config)
            except Exception as exc:  # a busy SQLite file: keep the last share
                self.errors.append(repr(exc))
                share = self.samples[-1].share if self.samples else 0.0
            hung = bool(self.stopped) and bool(killers.still_hung(self.stopped))
            self.samples.append(Sample(round(time.monotonic() - self.since, 2), share, hung))
            self._stop.wait(self.every)

    def __enter__(self) -> ShareWatch:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
