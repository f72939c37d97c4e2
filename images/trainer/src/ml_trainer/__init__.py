"""ml-platform's trainer: the workload that runs inside the training pipeline's pods.

Commands (`trainer <command> --help`): generate-data, validate, preprocess, train,
evaluate, deploy, rollback. See docs/trainer.md.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ml-trainer")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
