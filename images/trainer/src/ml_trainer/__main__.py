"""`python -m ml_trainer <command> ...` (what the local runtime of the DAG runs)."""

import sys

from ml_trainer.cli import main

sys.exit(main())
