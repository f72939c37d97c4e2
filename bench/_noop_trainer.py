"""A trainer command that does no work: the imports a real one pays, then one XCom object.

`bench/local_runtime.py` runs it through the local runtime to measure what the runtime adds
to a bare `python -c "import torch, mlflow"`.
"""

import json
import os
import sys
from pathlib import Path

import mlflow  # noqa: F401  (the cost being measured)
import torch  # noqa: F401

path = Path(os.environ["XCOM_RETURN_PATH"])
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps({"command": sys.argv[1], "ok": True}))
