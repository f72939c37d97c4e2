"""Ctrl-C and SIGTERM around servers that must not be left running.

`sigterm_as_ctrl_c()`: while it is active, SIGTERM raises KeyboardInterrupt, so a CI runner or
a process manager that stops us gets the same clean-up as Ctrl-C (the CLIs, the demo and the
tests' session fixtures). `ctrl_c_deferred()`: while it is active, Ctrl-C is ignored, so a
second Ctrl-C cannot cut a clean-up short and leave servers behind.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt inside the block; the previous handler comes back."""
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def ctrl_c_deferred() -> Iterator[None]:
    """Ignore SIGINT inside the block (only the main thread may change signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
