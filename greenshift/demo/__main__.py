"""`make demo`: start Greenshift for real on its embedded defaults, tell the story, stop it all.

Exit code 0 when the story went as it should: the CANARY deployment succeeded with no failed
request, and the LINEAR deployment to the faulty model rolled back by itself, with failures only
from the faulty model's own answers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from greenshift.demo.story import DemoStory, StoryResult
from greenshift.demo.timeline import draw
from greenshift.settings import Settings


def main() -> int:
    repo = Path(__file__).resolve().parents[2]
    home = Path(os.environ.get("GREENSHIFT_DEMO_HOME", repo / ".greenshift" / "demo"))
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    settings = Settings(home=home)
    began = time.monotonic()
    ok = False
    print(f"Starting Greenshift (home {home}, logs in {home / 'logs'})")
    env = dict(os.environ, GREENSHIFT_HOME=str(home))
    up = subprocess.Popen(
        [sys.executable, "-m", "greenshift", "up"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_up(up, timeout=120)
        print(f"Greenshift is up after {time.monotonic() - began:.0f}s.\n")
        story = DemoStory(settings.api_url, settings.runtime_url, settings.region)
        result = story.run()
        ok = summarise(result)
        picture = draw(
            result, Path(os.environ.get("GREENSHIFT_DEMO_TIMELINE", repo / "demo-timeline.png"))
        )
        print(f"\nTimeline: {picture}")
    finally:
        print("\nStopping Greenshift...")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(up.pid, signal.SIGTERM)
        try:
            up.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
        print(f"Done in {time.monotonic() - began:.0f}s.")
    return 0 if ok else 1


def _wait_up(up: subprocess.Popen[str], timeout: float) -> None:
    """Echo `greenshift up`'s output (in a thread, so its pipe never fills) until its banner."""
    banner = threading.Event()

    def pump() -> None:
        assert up.stdout is not None
        for line in up.stdout:
            print("  | " + line.rstrip(), flush=True)
            if line.startswith("Greenshift is up."):
                banner.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not banner.wait(0.3):
        if up.poll() is not None:
            raise SystemExit(f"greenshift up exited with code {up.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"Greenshift did not come up within {timeout:.0f}s")


def summarise(result: StoryResult) -> bool:
    answers = result.load.answers
    print("\nSummary")
    print(f"  requests sent:      {len(answers)}")
    print(f"  failed requests:    {len(result.load.failed)}")
    for version, count in sorted(result.load.by_version().items()):
        label = "failed (model)" if version == "error" else f"answered by {version}"
        print(f"  {label + ':':<19} {count}")
    ok = True
    for d in result.deployments:
        during = [a for a in answers if d.started <= a.at <= d.ended]
        failed = [a for a in during if a.status != 200]
        print(
            f"  {d.name:<20} {d.outcome:<12} {d.ended - d.started:5.0f}s  "
            f"requests {len(during)}, failed requests: {len(failed)}"
        )
        if d.outcome == "succeeded" and failed:
            ok = False
    canary, linear = [*result.deployments, None, None][:2]
    if canary is None or canary.outcome != "succeeded":
        print("  expected the CANARY deployment to succeed")
        ok = False
    if linear is None or linear.outcome != "rolled back":
        print("  expected the LINEAR deployment to roll back")
        ok = False
    if result.load.failed_not_by_model():
        print(f"  {len(result.load.failed_not_by_model())} request(s) failed in the data plane")
        ok = False
    return ok


if __name__ == "__main__":
    sys.exit(main())
