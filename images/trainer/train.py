"""The seed's call shape, kept working: `python train.py --lr 0.001 --batch-size 64 ...`.

Identical to `trainer train ...` (see `trainer train --help`).
"""

import sys

from ml_trainer.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
