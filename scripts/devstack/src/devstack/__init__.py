"""ml-platform's embedded local stack: MinIO, an MLflow tracking server and an Airflow home.

Python API: `devstack.stack.Stack` (see its docstring); CLI: `devstack up|down|status|env|generate`.
Bucket, model and connection names come from `devstack.platform_names.load_platform_names()`
(the generated dags/ml_pipeline/platform_defaults.json).
"""

from devstack.errors import DevstackError, ServerStartError, StackConflictError, ToolMissingError
from devstack.platform_names import PlatformNames, load_platform_names
from devstack.stack import Stack

__all__ = [
    "DevstackError",
    "PlatformNames",
    "ServerStartError",
    "Stack",
    "StackConflictError",
    "ToolMissingError",
    "load_platform_names",
]
