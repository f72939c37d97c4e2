"""Server processes: start in their own process group, wait until healthy, stop the group.

Every server runs in a new session (`start_new_session=True`), so its process id is also its
process-group id: stopping the group stops the server and every worker it forked, and a
Ctrl-C in the terminal reaches only `devstack`, which then stops what it started. Processes
are inspected and waited for with psutil (identity = pid + creation time, so a reused pid is
never taken for ours).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from devstack.errors import ServerStartError

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 20
START_MARKER = "=== devstack: starting "


@dataclass(frozen=True)
class ServerSpec:
    """How to run one server and how to tell that it is ready."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    health_url: str
    # A component that reports its health through another server's JSON health endpoint
    # (`{"<component>": {"status": "healthy"}}`, e.g. Airflow's /api/v2/monitor/health).
    health_component: str | None = None
    cwd: Path | None = None
    # `verify` of the health request: a CA bundle path for a TLS server with its own CA.
    health_verify: str | bool = True


@dataclass(frozen=True)
class ProcessRef:
    """A started process group, identified robustly against pid reuse: the leader's pid and
    its creation time (psutil's process identity)."""

    pid: int
    started_at: float | None

    def is_alive(self) -> bool:
        """True while the group still has a live (non-zombie) process and the leader is ours."""
        if self.started_at is not None and _leader_replaced(self.pid, self.started_at):
            return False
        return group_is_alive(self.pid)


def process_started_at(pid: int) -> float | None:
    """The process's creation time (psutil), or None when it is gone."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return None


def _leader_replaced(pid: int, started_at: float) -> bool:
    current = process_started_at(pid)
    # Leader gone (None): other group members may still be alive; the group check decides.
    return current is not None and current != started_at


def group_members(pgid: int) -> list[psutil.Process]:
    """The live (non-zombie) processes of process group `pgid`; zombie children of this
    process are reaped on the way."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []  # no process at all, zombies included
    except PermissionError:
        pass  # another user's group: look at its members below
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) != pgid:
                continue
            if proc.status() == psutil.STATUS_ZOMBIE:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(proc.pid, os.WNOHANG)
                continue
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
        members.append(proc)
    return members


def group_is_alive(pgid: int) -> bool:
    """True while any non-zombie process is in process group `pgid`."""
    return bool(group_members(pgid))


def processes_naming(root: Path) -> list[str]:
    """`pid: cmdline` of live processes (not this one) whose command line or environment
    names `root`: what a stack under `root` may have left running."""
    needle = str(root)
    found = []
    for proc in psutil.process_iter(["cmdline", "environ", "status"]):
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmdline = proc.info["cmdline"] or []
        environ = proc.info["environ"] or {}
        if any(needle in arg for arg in cmdline) or any(needle in v for v in environ.values()):
            found.append(f"{proc.pid}: {' '.join(cmdline)}")
    return found


def read_log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines written since the most recent start marker."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log written)"
    marker = text.rfind(START_MARKER)
    if marker >= 0:
        text = text[text.find("\n", marker) + 1 :]
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(log is empty)"


def _popen(spec: ServerSpec) -> subprocess.Popen[bytes]:
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    with spec.log_path.open("ab") as log_file:
        header = f"\n{START_MARKER}{spec.name} at {time.strftime('%Y-%m-%d %H:%M:%S')}: "
        log_file.write((header + " ".join(spec.argv) + " ===\n").encode())
        log_file.flush()
        process = subprocess.Popen(
            list(spec.argv),
            env=dict(spec.env),
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    log.debug("%s: started pid %d (log %s)", spec.name, process.pid, spec.log_path)
    return process


def spawn(spec: ServerSpec) -> ProcessRef:
    """Start the server in a new session with stdout+stderr appended to its log file."""
    process = _popen(spec)
    return ProcessRef(pid=process.pid, started_at=process_started_at(process.pid))


def is_healthy(
    url: str, component: str | None = None, timeout: float = 2.0, verify: str | bool = True
) -> bool:
    """True when `url` answers HTTP 200 (and, with `component`, reports it healthy).
    `verify` is as in `requests`, e.g. the CA bundle of a TLS server with its own CA."""
    try:
        response = requests.get(url, timeout=timeout, verify=verify)
        if response.status_code != 200:
            return False
        if component is None:
            return True
        return (response.json().get(component) or {}).get("status") == "healthy"
    except (requests.RequestException, ValueError, AttributeError):
        return False


def wait_until_healthy(spec: ServerSpec, ref: ProcessRef, timeout: float) -> None:
    """Poll the health URL until it answers 200; fail fast if the server exits."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        if is_healthy(spec.health_url, spec.health_component, verify=spec.health_verify):
            return
        if not ref.is_alive():
            raise ServerStartError(
                f"{spec.name} exited during start-up; last lines of {spec.log_path}:\n"
                f"{read_log_tail(spec.log_path)}\n(full log: {spec.log_path})"
            )
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"{spec.name} did not answer {spec.health_url} within {timeout:.0f}s; "
                f"last lines of {spec.log_path}:\n{read_log_tail(spec.log_path)}\n"
                f"(full log: {spec.log_path}; a slow machine may need a larger --timeout)"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def stop_group(name: str, ref: ProcessRef, timeout: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after `timeout` seconds."""
    members = group_members(ref.pid) if ref.is_alive() else []
    if not members:
        log.debug("%s: pid %d already gone", name, ref.pid)
        return
    _signal_group(ref.pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(members, timeout=timeout)
    if not alive and not group_is_alive(ref.pid):
        log.info("stopped %s (pid %d)", name, ref.pid)
        return
    log.warning("%s: still running %.0fs after SIGTERM; sending SIGKILL", name, timeout)
    _signal_group(ref.pid, signal.SIGKILL)
    psutil.wait_procs(group_members(ref.pid), timeout=5.0)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


class OneShot:
    """A one-shot command (e.g. a database migration) running in its own process group.

    Output goes to `log_path`; `wait()` raises ServerStartError with the log tail when the
    command fails or overruns, and `stop()` ends its whole group (used on Ctrl-C).
    """

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path
    ) -> None:
        self.name = name
        self.log_path = log_path
        spec = ServerSpec(name=name, argv=argv, env=env, log_path=log_path, health_url="")
        self._started_at = time.monotonic()
        self._finished_at: float | None = None
        self._process = _popen(spec)
        self._ref = ProcessRef(self._process.pid, process_started_at(self._process.pid))
        # Notes the exit time even while the caller is busy with other servers.
        self._watcher = threading.Thread(target=self._watch, name=f"watch {name}", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        self._process.wait()
        self._finished_at = time.monotonic()

    @property
    def duration(self) -> float | None:
        """Seconds from start to exit, once it has exited."""
        return None if self._finished_at is None else self._finished_at - self._started_at

    def wait(self, timeout: float) -> None:
        self._watcher.join(timeout)
        status = self._process.returncode
        if status is None:
            self.stop()
            raise ServerStartError(
                f"{self.name} did not finish within {timeout:.0f}s; last lines of "
                f"{self.log_path}:\n{read_log_tail(self.log_path)}\n(full log: {self.log_path})"
            ) from None
        if status != 0:
            raise ServerStartError(
                f"{self.name} failed with exit status {status}; last lines of {self.log_path}:\n"
                f"{read_log_tail(self.log_path)}\n(full log: {self.log_path})"
            )

    def stop(self) -> None:
        stop_group(self.name, self._ref, timeout=5.0)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=1.0)
