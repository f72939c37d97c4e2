"""The one exception the CLI turns into a readable line and exit code 1."""

from __future__ import annotations


class CheckFailed(Exception):
    """A check or bootstrap step failed; the message says what and what to do."""
