"""Ctrl-C for polling commands (greenshift/cli/interrupts.py): a SIGINT that lands in a
finaliser is lost as a KeyboardInterrupt, but not as a request; a second one still raises."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest

from greenshift.cli.interrupts import Interrupts


class SignalledWhileFinalised:
    """Sends this process SIGINT from its finaliser, so that Python runs the handler inside
    `__del__`, as when http.client drops a kept-alive connection's previous response."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs at one of these bytecodes
            pass


def test_a_keyboard_interrupt_raised_in_a_finaliser_is_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The failure the module exists for: with Python's own handler, nothing reaches the loop."""
    lost: list[type[BaseException]] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: lost.append(u.exc_type))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        SignalledWhileFinalised()  # dropped at once: its finaliser runs here
        time.sleep(0.01)  # any pending handler would run by now
    finally:
        signal.signal(signal.SIGINT, previous)
    assert lost == [KeyboardInterrupt]


def test_a_ctrl_c_in_a_finaliser_still_stops_the_loop() -> None:
    with Interrupts() as ctrl_c:
        assert not ctrl_c.requested
        SignalledWhileFinalised()
        assert ctrl_c.requested
        assert ctrl_c.wait(5)  # at once
    assert signal.getsignal(signal.SIGINT) is not ctrl_c._on_sigint  # put back


def test_a_wait_ends_at_ctrl_c_and_a_second_one_raises() -> None:
    def press() -> None:
        os.kill(os.getpid(), signal.SIGINT)

    with Interrupts() as ctrl_c:
        started = time.monotonic()
        assert not ctrl_c.wait(0.1)  # nothing pressed: the whole wait
        assert time.monotonic() - started >= 0.1
        timer = threading.Timer(0.2, press)
        timer.start()
        started = time.monotonic()
        try:
            assert ctrl_c.wait(30)
        finally:
            timer.cancel()
        assert time.monotonic() - started < 5
        with pytest.raises(KeyboardInterrupt):
            press()
            time.sleep(1)  # the handler raises here
