"""The one exception type the CLI turns into a readable message and a non-zero exit."""

from __future__ import annotations


class TrainerError(Exception):
    """A failure the operator can act on: what went wrong, and what to do about it."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.problem} Fix: {self.fix}"
