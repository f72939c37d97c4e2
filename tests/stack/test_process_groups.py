"""devstack.process on psutil: a server is its whole process group, stopping it stops every
process it forked (SIGKILL for one that ignores SIGTERM), and a recorded pid that now belongs
to another process is never taken for the server (no signal reaches it)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest
from devstack.process import ProcessRef, group_members, process_started_at, stop_group

# A leader that forks a grandchild into its own group, prints the grandchild's pid and waits.
FORKING_LEADER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
print(child.pid, flush=True)
time.sleep(300)
"""
IGNORES_SIGTERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(300)
"""


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts in their own session; killed at teardown, pass or fail."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for proc in processes:
        for member in group_members(proc.pid):
            member.kill()
        proc.kill()
        proc.wait()


def start_group(code: str, started: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    started.append(proc)
    return proc


def test_stopping_a_group_stops_the_processes_its_leader_forked(started) -> None:
    leader = start_group(FORKING_LEADER, started)
    assert leader.stdout is not None
    grandchild = int(leader.stdout.readline())
    ref = ProcessRef(leader.pid, process_started_at(leader.pid))
    assert {p.pid for p in group_members(leader.pid)} == {leader.pid, grandchild}
    assert ref.is_alive()

    stop_group("forking", ref, timeout=30)

    assert not ref.is_alive()
    assert not psutil.pid_exists(grandchild) or (
        psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE
    )


def test_a_group_that_ignores_sigterm_is_killed_after_the_timeout(
    started, caplog: pytest.LogCaptureFixture
) -> None:
    stubborn = start_group(IGNORES_SIGTERM, started)
    assert stubborn.stdout is not None and stubborn.stdout.readline().strip() == "ready"
    ref = ProcessRef(stubborn.pid, process_started_at(stubborn.pid))

    with caplog.at_level("WARNING", logger="devstack"):
        stop_group("stubborn", ref, timeout=0.5)

    assert not ref.is_alive()
    assert "stubborn: still running 0s after SIGTERM; sending SIGKILL" in caplog.text


def test_a_reused_pid_is_not_taken_for_the_recorded_server(started) -> None:
    other = start_group("import time; time.sleep(300)", started)
    # What a stack.json written for an earlier process with the same pid would hold.
    recorded = ProcessRef(other.pid, (process_started_at(other.pid) or 0.0) - 3600.0)
    assert not recorded.is_alive()

    stop_group("stale record", recorded, timeout=1)

    time.sleep(0.2)
    assert other.poll() is None, "stop_group signalled a process that was not the server"
