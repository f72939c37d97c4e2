"""What `devstack` and `devstack cluster` share: output, exit codes, per-root sub-commands."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

EXIT_ERROR = 1
EXIT_NOT_RUNNING = 3


def out(line: str) -> None:
    """Command output (stdout): what the user asked for, e.g. the `export` lines."""
    sys.stdout.write(line + "\n")


def err(line: str) -> None:
    sys.stderr.write(line + "\n")


@dataclass(frozen=True)
class RootCommands:
    """Adds sub-commands that act on one state folder: each gets `--root` and `-v`.

    `--root` defaults to `$<root_env>`, else `root_default` (`shown_default` in the help).
    """

    commands: argparse._SubParsersAction  # type: ignore[type-arg]
    what: str
    root_env: str
    root_default: Path
    shown_default: str

    def add(self, name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        parser = self.commands.add_parser(name, help=help_text, description=description)
        parser.add_argument(
            "--root",
            type=Path,
            default=Path(os.environ.get(self.root_env) or self.root_default),
            help=f"state folder of the {self.what} "
            f"(default: ${self.root_env}, else {self.shown_default})",
        )
        parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
        return parser
