"""`dags/ml_pipeline/trainer_options.json` is what the trainer's option dataclasses say.

The DAGs cannot import `ml_trainer`; they read this generated file instead (commands, flags,
defaults, schemas, which hyperparameters are searchable). Regenerated here and compared.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "dags" / "ml_pipeline" / "trainer_options.json"


def test_the_committed_trainer_options_file_is_not_stale(tmp_path: Path) -> None:
    fresh = tmp_path / "trainer_options.json"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "generate_trainer_options.py"), str(fresh)],
        check=True,
        timeout=120,
    )
    assert COMMITTED.read_text() == fresh.read_text(), (
        f"{COMMITTED.relative_to(REPO)} is stale: the trainer's options changed. "
        "Run `make generate-trainer-options` and commit the file."
    )
