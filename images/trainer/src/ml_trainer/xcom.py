"""The KubernetesPodOperator XCom contract: exactly one JSON object in a well-known file."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

XCOM_PATH_ENV = "XCOM_RETURN_PATH"
DEFAULT_XCOM_PATH = "/airflow/xcom/return.json"


def xcom_path() -> Path:
    return Path(os.environ.get(XCOM_PATH_ENV) or DEFAULT_XCOM_PATH)


def _jsonable(value: Any) -> Any:
    """Plain JSON: NaN/inf become null (strict JSON has no spelling for them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def write_xcom(result: dict[str, Any], path: Path | None = None) -> Path:
    """Write `result` as the task's return value (atomically, parent folder created)."""
    target = path or xcom_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(result), allow_nan=False, sort_keys=True) + "\n")
    tmp.replace(target)
    log.info("XCom written to %s", target)
    return target
