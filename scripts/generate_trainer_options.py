"""Write the trainer's commands and options as JSON for the DAGs (`make generate-trainer-options`).

    python scripts/generate_trainer_options.py [OUT]   # default dags/ml_pipeline/trainer_options.json

The DAGs cannot import `ml_trainer` (it is not in the Airflow image), so the trainer's option
dataclasses (`ml_trainer.commands`) are written out once; the DAGs' Params, search space and
trial arguments read the file. A test regenerates it and fails when the committed copy is stale.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ml_trainer.commands import describe_commands

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "dags" / "ml_pipeline" / "trainer_options.json"


def render() -> str:
    return json.dumps(describe_commands(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT, help="file to write")
    args = parser.parse_args(argv)
    args.out.write_text(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
