"""Ctrl-C for a command that polls until interrupted (`greenshift logs --follow`).

Python turns SIGINT into a KeyboardInterrupt raised wherever the main thread happens to be. When
that is a finaliser, the exception is lost: http.client closes the previous response of a
kept-alive connection as it sends the next request, in the response's `__del__`, and a
KeyboardInterrupt raised there is never seen. The command then polls on as if Ctrl-C had not
been pressed. CI met it once (`logs --follow` did not exit); ~550 Ctrl-C at random moments of a
`--interval 0` follow met it three times.

So such a command takes SIGINT as a request: the handler only sets a flag, which the loop reads
between polls and which cuts its wait short. A second Ctrl-C, for a poll stuck on the network,
raises KeyboardInterrupt as usual. The handler takes no lock: one taken by the code it
interrupts would deadlock it.
"""

from __future__ import annotations

import signal
import time
from types import FrameType, TracebackType
from typing import Any

# How often a wait looks at the flag: the handler cannot wake the sleep (PEP 475 resumes it).
_SLICE_SECONDS = 0.05


class Interrupts:
    """`with Interrupts() as ctrl_c:` SIGINT sets `ctrl_c.requested` instead of raising."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> Interrupts:
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; whether Ctrl-C was pressed (then at once)."""
        deadline = time.monotonic() + seconds
        while not self.requested:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, _SLICE_SECONDS))
        return self.requested
