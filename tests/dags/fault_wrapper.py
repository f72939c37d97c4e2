"""A stand-in for `python -m ml_trainer` that injects faults (tests only).

The local runtime runs `$ML_PIPELINE_LOCAL_COMMAND <command> <arguments>`; the e2e tests
point that at `python fault_wrapper.py`, which runs the real trainer unless `$FAULTS` (JSON)
says otherwise for a command whose arguments contain `match`:

- `fail`: exit with `exit` without starting the trainer (a trial that always fails);
- `kill_after_checkpoint`: the first `times` tries start the trainer, SIGKILL it right after
  it wrote its first checkpoint, leave a stale `return.json` behind and exit 1 (a transient
  failure, e.g. a preempted node); later tries run normally;
- `env`: run the trainer with these variables overridden (e.g. an unreachable MLflow).

Tries are counted in files under `$FAULTS_STATE_DIR`.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path


def matching(rules: list[dict], command: str, argv: list[str]) -> list[dict]:
    joined = " ".join(argv)
    return [r for r in rules if r.get("command") == command and r.get("match", "") in joined]


def count_try(rule: dict, argv: list[str]) -> int:
    state = Path(os.environ["FAULTS_STATE_DIR"])
    state.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(json.dumps([rule, argv]).encode()).hexdigest()[:16]
    path = state / key
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n


def main() -> int:
    command, argv = sys.argv[1], sys.argv[2:]
    faults = json.loads(os.environ.get("FAULTS") or "{}")
    trainer = [sys.executable, "-m", "ml_trainer", command, *argv]
    env = dict(os.environ)

    for rule in matching(faults.get("fail", []), command, argv):
        print(f"fault_wrapper: injected permanent failure of `{command}`", file=sys.stderr)
        return int(rule.get("exit", 3))
    for rule in matching(faults.get("env", []), command, argv):
        env.update(rule["set"])
        print(f"fault_wrapper: `{command}` runs with {rule['set']}", file=sys.stderr)
    for rule in matching(faults.get("kill_after_checkpoint", []), command, argv):
        if count_try(rule, argv) <= int(rule.get("times", 1)):
            return kill_after_first_checkpoint(trainer, env)
    return subprocess.call(trainer, env=env)


def kill_after_first_checkpoint(trainer: list[str], env: dict[str, str]) -> int:
    proc = subprocess.Popen(
        trainer, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if "wrote s3://" in line and "last.pt" in line:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            xcom = Path(env.get("XCOM_RETURN_PATH", "/airflow/xcom/return.json"))
            xcom.parent.mkdir(parents=True, exist_ok=True)
            xcom.write_text(json.dumps({"stale": True, "note": "left by a killed try"}))
            print("fault_wrapper: killed the trainer after its first checkpoint", file=sys.stderr)
            return 1
    return proc.wait() or 1  # never checkpointed: still a failed try


if __name__ == "__main__":
    sys.exit(main())
