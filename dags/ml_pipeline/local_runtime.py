"""The `local` runtime's pod task: the trainer command as a local process.

Same contract as the pod (docs/CONTRACTS.md §4, §6): `trainer <command> <arguments>` with
the trainer environment (`ml_pipeline.trainer.trainer_env`, plus the audit trail of
`ml_pipeline.run_context.audit_env`) on top of the worker's own
(which carries the stack's `AWS_*` credentials); stdout and stderr go to the task log line
by line; the JSON object the command writes to `$XCOM_RETURN_PATH` — a fresh file in a
fresh folder for every try — becomes the task's XCom; a non-zero exit fails the task so
retries apply. A killed or timed-out task takes its process group down with it, and on
Linux the trainer also dies with the worker process (`PR_SET_PDEATHSIG`): set by util-linux's
`setpriv --pdeathsig` in front of the command where it is installed (Debian and the Airflow
image have it), else by a `preexec_fn`. The `setpriv` way lets Python start the process with
vfork: 2.5 ms instead of ~48 ms to fork a worker that has imported torch and Airflow, which is
most of a short trial's orchestration cost (`python -m bench sweep_scheduling`).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException
from ml_pipeline.config import pipeline_settings, platform_config
from ml_pipeline.run_context import audit_env, context_data_date, path_safe
from ml_pipeline.trainer import trainer_env

if TYPE_CHECKING:
    from airflow.sdk import Context

TAIL_LINES = 15
PR_SET_PDEATHSIG = 1  # linux/prctl.h
KILL_GRACE_SECONDS = 10


def _die_with_parent_prefix() -> list[str]:
    """`setpriv --pdeathsig KILL --` where util-linux's setpriv exists, else [] (then
    `_die_with_parent` does it in the child, at the cost of a full fork)."""
    if not sys.platform.startswith("linux"):
        return []
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


def _die_with_parent() -> None:
    """`preexec_fn`: on Linux the trainer gets SIGKILL when the worker process dies, even by
    SIGKILL (no orphan keeps training after its task is gone)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class TrainerProcessError(AirflowException):
    """The trainer process exited non-zero (the message carries its last output lines)."""


class LocalTrainerOperator(BaseOperator):
    """Run `trainer <command> <arguments>` as a local process (the `local` runtime).

    :param command: the trainer subcommand (`validate`, `train`, …).
    :param arguments: its arguments (templated; mapped arguments are used as given).
    :param profile: compute profile name (templated) — selects `CUDA_VISIBLE_DEVICES`.
    :param namespace: the namespace the pod would run in (recorded in the log only).
    :param trial_id: the trial a mapped training instance runs (its map index label).
    """

    template_fields = ("arguments", "profile", "namespace")
    ui_color = "#d9ead3"

    def __init__(
        self,
        *,
        command: str,
        arguments: list[str] | None = None,
        profile: str = "cpu",
        namespace: str | None = None,
        trial_id: str | None = None,
        do_xcom_push: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(do_xcom_push=do_xcom_push, **kwargs)
        self.command = command
        self.arguments = arguments or []
        self.profile = profile
        self.namespace = namespace
        self.trial_id = trial_id
        self._process: subprocess.Popen[str] | None = None

    def argv(self) -> list[str]:
        return [*pipeline_settings().local_command, self.command, *(str(a) for a in self.arguments)]

    def execute(self, context: Context) -> Any:
        cfg = platform_config()
        profile = cfg.profile(self.profile)
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        # A fresh folder per try: a retry can never read an earlier try's return.json.
        workdir = Path(
            tempfile.mkdtemp(
                prefix=f"{path_safe(ti.task_id)}-{map_index}-try{ti.try_number}-",
                dir=pipeline_settings().local_workdir,
            )
        )
        xcom_path = workdir / "airflow" / "xcom" / "return.json"
        xcom_path.parent.mkdir(parents=True)  # like the pod's /airflow/xcom emptyDir mount
        env = {
            **os.environ,
            **trainer_env(cfg, profile, context_data_date(context)),
            **audit_env(cfg, context),
            "XCOM_RETURN_PATH": str(xcom_path),
        }
        argv = self.argv()
        self.log.info(
            "local runtime: %s (profile %s, namespace %s, XCOM_RETURN_PATH=%s)",
            shlex.join(argv),
            profile.name,
            self.namespace,
            xcom_path,
        )
        started = time.monotonic()
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        die_with_parent = _die_with_parent_prefix()
        self._process = subprocess.Popen(
            [*die_with_parent, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=workdir,
            text=True,
            bufsize=1,
            start_new_session=True,  # own process group: on_kill/timeout kill all of it
            preexec_fn=(
                _die_with_parent
                if sys.platform.startswith("linux") and not die_with_parent
                else None
            ),
        )
        try:
            assert self._process.stdout is not None
            for line in self._process.stdout:
                line = line.rstrip("\n")
                tail.append(line)
                self.log.info("%s", line)
            returncode = self._process.wait()
        finally:
            self._stop_process()
        elapsed = time.monotonic() - started
        result = self._read_result(xcom_path)
        if returncode != 0:
            if result is not None and self.do_xcom_push:
                # Same as KubernetesPodOperator: what the failed try wrote is still pushed.
                # Airflow clears it when the next try starts.
                ti.xcom_push(key="return_value", value=result)
            raise TrainerProcessError(
                f"`trainer {self.command}` exited with code {returncode} after {elapsed:.1f}s "
                f"(work folder kept: {workdir}). Last output:\n" + "\n".join(tail)
            )
        if result is None:
            raise TrainerProcessError(
                f"`trainer {self.command}` exited 0 but wrote no JSON object to {xcom_path}; "
                "every trainer command must write one (docs/CONTRACTS.md §4)"
            )
        self.log.info(
            "trainer %s finished in %.1fs; XCom keys: %s", self.command, elapsed, sorted(result)
        )
        shutil.rmtree(workdir, ignore_errors=True)
        return result

    def _read_result(self, path: Path) -> dict[str, Any] | None:
        if not path.is_file():
            return None
        text = path.read_text()
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TrainerProcessError(f"{path} is not valid JSON ({exc}): {text[:200]!r}") from None
        if not isinstance(value, dict):
            raise TrainerProcessError(f"{path} holds a {type(value).__name__}, not a JSON object")
        return value

    def _stop_process(self) -> None:
        """Terminate the whole process group (no-op when it already exited)."""
        proc = self._process
        if proc is None or proc.poll() is not None:
            return
        self.log.warning("stopping trainer process group %s", proc.pid)
        for sig, wait in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def on_kill(self) -> None:
        self._stop_process()
