"""Helpers of the cluster tests (a plain module: tests/cluster is on sys.path)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Generous: CI is a busy 2-core machine; a correct cluster answers in seconds.
DEFAULT_TIMEOUT = 90.0


def wait_for(
    read: Callable[[], T],
    done: Callable[[T], bool],
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.25,
) -> T:
    """Call `read` until `done(value)`; fail naming `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}; last: {value}"
            )
        time.sleep(interval)
        value = read()
    return value
