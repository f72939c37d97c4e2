"""The errors `devstack` raises; each message says what went wrong and what to do."""

from __future__ import annotations


class DevstackError(RuntimeError):
    """Base class: the CLI prints the message (no traceback) and exits non-zero."""


class ToolMissingError(DevstackError):
    """A server binary (MinIO, MLflow, Airflow) is not installed."""


class ServerStartError(DevstackError):
    """A server exited or never became healthy during start-up."""


class StackConflictError(DevstackError):
    """The root already holds a stack that is not (fully) healthy."""
