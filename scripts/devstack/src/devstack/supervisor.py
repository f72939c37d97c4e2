"""`Supervisor`: the life cycle that `Stack` and the cluster harness's `Cluster` share.

A supervisor starts servers as process groups under one root folder and records each in a
state file (`<root>/<state_file>`) as soon as it is spawned, so `down()` finds it even after
an interrupted `up()`. `up()` and `down()` hold a lock on the root (two `up`s at once would
race for the ports). `up()` on a root that already runs a complete, healthy set reuses it
(`reused` is then True and leaving the `with` block leaves it running), clears the state
of one whose processes are all gone, and refuses (StackConflictError naming the `down`
command) one that runs only partly. On any failure or interruption of the start-up, every
process it started is stopped before the error propagates.

Subclasses name themselves (`kind`, `command`, the file names) and implement `_start_fresh`,
`_stop`, `_wanted` and `_is_healthy`; `_adopted` may add to a reused set.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Generic, Self, TypeVar

from devstack.errors import DevstackError, StackConflictError
from devstack.interrupts import ctrl_c_deferred
from devstack.ports import HOST
from devstack.process import ProcessRef, ServerSpec, spawn, wait_until_healthy
from devstack.state import RecordedState, ServerState

log = logging.getLogger(__name__)

StateT = TypeVar("StateT", bound=RecordedState)


class Supervisor(ABC, Generic[StateT]):
    """Servers under one root, recorded in a state file; see the module docstring."""

    kind: ClassVar[str]  # what it is called in messages: "stack", "cluster harness"
    command: ClassVar[str]  # its CLI, for the hints in messages: "devstack", "devstack cluster"
    state_type: ClassVar[type[RecordedState]]
    state_file: ClassVar[str]
    lock_file: ClassVar[str]

    def __init__(
        self,
        root: Path | str | None,
        *,
        default_root: Path,
        start_timeout: float,
        stop_timeout: float,
    ) -> None:
        self.root = Path(root).resolve() if root is not None else default_root
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.reused = False
        # Seconds each step of the last `up()` took (each server by name, `up`, ...).
        self.timings: dict[str, float] = {}
        self._state: StateT | None = None

    # ------------------------------------------------------------------ lifecycle
    def up(self) -> Self:
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock():
            existing = self._load_state()
            if existing is not None and self._adopt_or_clear(existing):
                self._adopted(existing)
                return self
            self._start_fresh()
        return self

    def down(self) -> bool:
        """Stop every server recorded under the root; False (and a message) if none was."""
        state = self._load_state()  # before the lock: a missing root stays missing
        if state is not None:
            with self._lock():
                state = self._load_state()
                if state is not None:
                    self._stop_and_forget(state)
        if state is None:
            log.info("%s: nothing running under %s", self.kind, self.root)
            return False
        log.info("%s under %s is down", self.kind, self.root)
        return True

    def __enter__(self) -> Self:
        return self.up()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.reused:
            self.down()

    @property
    def state(self) -> StateT:
        if self._state is None:
            self._state = self._load_state()
        if self._state is None:
            raise DevstackError(
                f"no {self.kind} is running under {self.root}; start it with `{self.command} up`"
            )
        return self._state

    # ------------------------------------------------------------------ for subclasses
    @abstractmethod
    def _start_fresh(self) -> None:
        """Start every server (the lock is held); on failure stop them (`_stop_and_forget`)."""

    @abstractmethod
    def _stop(self, state: StateT) -> None:
        """Stop every server recorded in `state`."""

    @abstractmethod
    def _wanted(self, recorded: set[str]) -> set[str]:
        """The servers a complete set has, given the names recorded."""

    @abstractmethod
    def _is_healthy(self, state: StateT, name: str) -> bool:
        """True when the server `name` answers its health check."""

    def _adopted(self, state: StateT) -> None:
        """Called (the lock held) after a healthy running set was adopted."""

    # ------------------------------------------------------------------ shared internals
    def _health(self, state: StateT) -> dict[str, tuple[bool, bool]]:
        """Each recorded server: (process alive, answers its health check)."""
        return {
            name: (server.ref.is_alive(), self._is_healthy(state, name))
            for name, server in state.servers.items()
        }

    def _adopt_or_clear(self, existing: StateT) -> bool:
        """True when `existing` is healthy and now adopted; clears stale state; else refuses."""
        health = self._health(existing)
        wanted = self._wanted(set(health))
        if set(health) == wanted and all(healthy for _, healthy in health.values()):
            self._state = existing
            self.reused = True
            log.info("a healthy %s is already running under %s; reusing it", self.kind, self.root)
            return True
        if not any(alive for alive, _ in health.values()):
            log.info("removing stale state of a %s that is no longer running", self.kind)
            self._remove_state()
            return False
        described = ", ".join(
            f"{name} {'healthy' if healthy else 'running but unhealthy' if alive else 'stopped'}"
            for name, (alive, healthy) in health.items()
        )
        missing = sorted(wanted - set(health))
        if missing:
            described += f", {', '.join(missing)} never started"
        raise StackConflictError(
            f"a partly running {self.kind} is recorded under {self.root} ({described}); "
            f"stop it with `{self.command} down --root {self.root}` and run "
            f"`{self.command} up` again"
        )

    def _spawn(
        self,
        state: StateT,
        spec: ServerSpec,
        port: int,
        extra_ports: dict[str, int] | None = None,
    ) -> ProcessRef:
        """Start the server and record it (so `down` finds it even if `up` is interrupted)."""
        log.info("starting %s on %s:%d (log %s)", spec.name, HOST, port, spec.log_path)
        ref = spawn(spec)
        state.servers[spec.name] = ServerState(
            pid=ref.pid,
            started_at=ref.started_at,
            port=port,
            health_url=spec.health_url,
            log=str(spec.log_path),
            extra_ports=extra_ports or {},
            health_component=spec.health_component,
        )
        self._save_state(state)
        return ref

    def _start_server(
        self,
        state: StateT,
        spec: ServerSpec,
        port: int,
        extra_ports: dict[str, int] | None = None,
    ) -> None:
        """Spawn and record the server, then wait until it is healthy (timed)."""
        started_at = time.monotonic()
        ref = self._spawn(state, spec, port, extra_ports)
        wait_until_healthy(spec, ref, self.start_timeout)
        self.timings[spec.name] = time.monotonic() - started_at
        log.debug("%s healthy in %.1fs", spec.name, self.timings[spec.name])

    def _stop_and_forget(self, state: StateT) -> None:
        """Stop every recorded server and remove the state file (a 2nd Ctrl-C cannot cut in)."""
        with ctrl_c_deferred():
            self._stop(state)
            self._remove_state()
        self._state = None
        self.reused = False

    @property
    def _state_path(self) -> Path:
        return self.root / self.state_file

    def _load_state(self) -> StateT | None:
        return self.state_type.load(self._state_path)  # type: ignore[return-value]

    def _save_state(self, state: StateT) -> None:
        state.save(self._state_path)

    def _remove_state(self) -> None:
        self._state_path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with (self.root / self.lock_file).open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
