"""The reconciler is not a workspace member (it has its own image); import it from source."""

import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "images" / "taint-reconciler" / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))
