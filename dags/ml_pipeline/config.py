"""Where the pipeline runs: the platform config file and the pipeline's environment settings.

**The platform config** (docs/CONTRACTS.md §3): names, endpoints and GPU profiles, from one
file. In a cluster the chart renders ConfigMap `<release>-platform` (key `platform.json`) and
mounts it into every Airflow component; `ML_PLATFORM_CONFIG` names the path. Locally, or
when the file is absent, `platform_defaults.json` next to this module is used. The file is a
few kilobytes of JSON read once per process; nothing else here does I/O.

**The settings**: every environment knob of the pipeline DAGs, read in this one place (the DAG
files never read `os.environ` themselves: they ask `pipeline_settings()`). Reading environment
variables is not I/O, so this is safe at parse time. Names and defaults:

| variable | default | what it does |
|---|---|---|
| `ML_PIPELINE_RUNTIME` | `kubernetes` | `kubernetes` → KubernetesPodOperator, `local` → local processes |
| `ML_PLATFORM_CONFIG` | unset | path of the chart-rendered `platform.json` (below) |
| `ML_PIPELINE_SENSOR_POKE_SECONDS` | `60` | poke interval of both sensors |
| `ML_PIPELINE_SENSOR_TIMEOUT_SECONDS` | `21600` (6 h) | how long the sensors wait for upstream data |
| `ML_PIPELINE_DEFER_SENSORS` | `true` | the sensors defer to the triggerer; `false` reschedules instead (`devstack.local_run` sets it: `dag.test()` runs triggers inline, without their timeout) |
| `ML_PIPELINE_RETRIES` | `2` | `default_args["retries"]` |
| `ML_PIPELINE_RETRY_DELAY_SECONDS` | `120` | `default_args["retry_delay"]` |
| `ML_PIPELINE_MAX_PARALLEL_TRIALS` | `4` | `max_active_tis_per_dag` of `train_with_hp` (GPU quota) |
| `ML_PIPELINE_DEADLINE_MINUTES` | `360` | deadline alert: a run not done this long after queueing notifies |
| `ML_PIPELINE_WEBHOOK_CONN_ID` | `ml_pipeline_webhook` | Airflow connection holding the Slack-compatible webhook URL |
| `ML_PIPELINE_MLFLOW_UI_URL` | tracking URI | base URL of MLflow for the links in notifications |
| `ML_PIPELINE_LOCAL_COMMAND` | `<python> -m ml_trainer` | local runtime: the command prefix (shell words) |
| `ML_PIPELINE_LOCAL_WORKDIR` | system temp dir | local runtime: where each try's `return.json` folder is made |
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

DEFAULTS_PATH = Path(__file__).with_name("platform_defaults.json")

RUNTIMES = ("kubernetes", "local")


class SettingsError(ValueError):
    """An environment variable holds a value the pipeline cannot use."""


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; use true or false")


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(
            f"{name}={raw!r} is not an integer; unset it or give a whole number"
        ) from None
    if value < minimum:
        raise SettingsError(f"{name}={value} is below the minimum {minimum}")
    return value


@dataclass(frozen=True)
class PipelineSettings:
    """The pipeline's environment-derived settings (see the module docstring for the names)."""

    runtime: str
    config_path: str | None
    sensor_poke_seconds: int
    sensor_timeout_seconds: int
    defer_sensors: bool
    retries: int
    retry_delay_seconds: int
    max_parallel_trials: int
    deadline_minutes: int
    webhook_conn_id: str
    mlflow_ui_url: str | None
    local_command: tuple[str, ...]
    local_workdir: str | None

    @property
    def is_local(self) -> bool:
        return self.runtime == "local"


def read_settings() -> PipelineSettings:
    """Read the settings from the environment now (no caching; tests call this)."""
    runtime = os.environ.get("ML_PIPELINE_RUNTIME", "").strip().lower() or "kubernetes"
    if runtime not in RUNTIMES:
        raise SettingsError(
            f"ML_PIPELINE_RUNTIME={runtime!r} is not one of {RUNTIMES}; "
            "use `kubernetes` in a cluster or `local` with the embedded stack"
        )
    local_command = os.environ.get("ML_PIPELINE_LOCAL_COMMAND", "").strip()
    return PipelineSettings(
        runtime=runtime,
        config_path=os.environ.get("ML_PLATFORM_CONFIG") or None,
        sensor_poke_seconds=_int("ML_PIPELINE_SENSOR_POKE_SECONDS", 60, minimum=1),
        sensor_timeout_seconds=_int("ML_PIPELINE_SENSOR_TIMEOUT_SECONDS", 6 * 3600, minimum=1),
        defer_sensors=_bool("ML_PIPELINE_DEFER_SENSORS", True),
        retries=_int("ML_PIPELINE_RETRIES", 2),
        retry_delay_seconds=_int("ML_PIPELINE_RETRY_DELAY_SECONDS", 120),
        max_parallel_trials=_int("ML_PIPELINE_MAX_PARALLEL_TRIALS", 4, minimum=1),
        deadline_minutes=_int("ML_PIPELINE_DEADLINE_MINUTES", 360, minimum=1),
        webhook_conn_id=os.environ.get("ML_PIPELINE_WEBHOOK_CONN_ID") or "ml_pipeline_webhook",
        mlflow_ui_url=os.environ.get("ML_PIPELINE_MLFLOW_UI_URL") or None,
        local_command=(
            tuple(shlex.split(local_command))
            if local_command
            else (sys.executable, "-m", "ml_trainer")
        ),
        local_workdir=os.environ.get("ML_PIPELINE_LOCAL_WORKDIR") or None,
    )


@cache
def pipeline_settings() -> PipelineSettings:
    """The settings of this process (read once; `pipeline_settings.cache_clear()` re-reads)."""
    return read_settings()


# ----------------------------------------------------------------------------- platform config
class PlatformConfigError(ValueError):
    """The platform config file is missing a key or holds a value of the wrong shape."""


@dataclass(frozen=True)
class Profile:
    """A compute profile: a GPU pool (`a100`, `h100`, …) or the `cpu` profile."""

    name: str
    node_labels: dict[str, str]
    gpu_products: tuple[str, ...]
    gpus: int
    cpu: str
    memory: str
    priority_class_name: str | None

    @property
    def is_gpu(self) -> bool:
        return self.gpus > 0


@dataclass(frozen=True)
class GpuTaint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True)
class SharedVolume:
    """The optional ReadWriteMany dataset volume of the training namespace."""

    claim_name: str
    mount_path: str


@dataclass(frozen=True)
class SecretEnv:
    """A Secret whose keys the pods read as environment variables: `env` maps name -> key."""

    name: str
    env: dict[str, str]


@dataclass(frozen=True)
class PlatformConfig:
    """Typed view of `platform.json`; `source` says which file it came from."""

    namespaces: dict[str, str]
    buckets: dict[str, str]
    model_name: str
    experiment: str
    trainer_image: str
    image_pull_secrets: tuple[str, ...]
    service_account_name: str | None
    shared_volume: SharedVolume | None
    mlflow_tracking_uri: str
    s3_endpoint_url: str
    s3_region: str
    object_store_secret: SecretEnv | None  # None: workload identity, no static keys
    mlflow_auth_secret: SecretEnv | None  # None: MLflow without basic auth
    object_store_conn_id: str  # the Airflow connection of the object store (sensors, hooks)
    gpu_taint: GpuTaint
    profiles: dict[str, Profile] = field(default_factory=dict)
    source: str = str(DEFAULTS_PATH)

    # -- names ---------------------------------------------------------------------------
    def bucket(self, role: str) -> str:
        try:
            return self.buckets[role]
        except KeyError:
            raise PlatformConfigError(
                f"no bucket for role {role!r} in {self.source}; roles: {sorted(self.buckets)}"
            ) from None

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            raise PlatformConfigError(
                f"unknown compute profile {name!r}; the platform config {self.source} enables "
                f"{sorted(self.profiles)} (enable a pool under `gpuPools` in the chart values)"
            ) from None

    @property
    def gpu_profile_names(self) -> list[str]:
        return sorted(n for n, p in self.profiles.items() if p.is_gpu)

    @property
    def default_training_profile(self) -> str:
        """The first enabled GPU pool (alphabetically), or `cpu` when no pool is enabled."""
        gpu = self.gpu_profile_names
        return gpu[0] if gpu else "cpu"

    # -- run-time endpoints (environment overrides the file, CONTRACTS §3) ------------------
    def tracking_uri(self) -> str:
        return os.environ.get("MLFLOW_TRACKING_URI") or self.mlflow_tracking_uri

    def s3_endpoint(self) -> str:
        return os.environ.get("AWS_ENDPOINT_URL") or self.s3_endpoint_url

    # -- object-store layout (ARCHITECTURE §1) ---------------------------------------------
    def features_key(self, ds: str) -> str:
        """Key of the daily partition inside the datasets bucket."""
        return f"daily/{ds}/features.parquet"

    def features_uri(self, ds: str) -> str:
        return f"s3://{self.bucket('datasets')}/{self.features_key(ds)}"

    def processed_prefix(self, ds: str) -> str:
        return f"s3://{self.bucket('processed')}/{ds}/"


def _require(mapping: dict[str, Any], key: str, where: str, source: str) -> Any:
    """`mapping[key]`; the key must be present (its value may be null where the contract says)."""
    if not isinstance(mapping, dict) or key not in mapping:
        raise PlatformConfigError(f"{source}: missing `{where}{key}` (see docs/CONTRACTS.md §3)")
    return mapping[key]


def _secret_env(
    raw: dict[str, Any] | None, where: str, fields: dict[str, str], req: Any
) -> SecretEnv | None:
    """A `{name, <field>: key, …}` object (or null) as a SecretEnv; `fields` maps env -> field."""
    if not raw:
        return None
    env = {env_name: str(req(raw, field, where)) for env_name, field in fields.items()}
    return SecretEnv(name=str(req(raw, "name", where)), env=env)


def parse_platform_config(data: dict[str, Any], source: str) -> PlatformConfig:
    """Validate the JSON shape of CONTRACTS §3 and build the typed config."""

    def req(mapping: dict[str, Any], key: str, where: str = "") -> Any:
        return _require(mapping, key, where, source)

    profiles: dict[str, Profile] = {}
    for name, raw in req(data, "profiles").items():
        try:
            gpus = int(req(raw, "gpus", f"profiles.{name}."))
        except (TypeError, ValueError):
            raise PlatformConfigError(
                f"{source}: profiles.{name}.gpus must be an integer"
            ) from None
        profiles[name] = Profile(
            name=name,
            node_labels={str(k): str(v) for k, v in (raw.get("nodeLabels") or {}).items()},
            gpu_products=tuple(str(p) for p in raw.get("gpuProducts") or ()),
            gpus=gpus,
            cpu=str(req(raw, "cpu", f"profiles.{name}.")),
            memory=str(req(raw, "memory", f"profiles.{name}.")),
            priority_class_name=raw.get("priorityClassName") or None,
        )
    if "cpu" not in profiles:
        raise PlatformConfigError(f"{source}: `profiles.cpu` is required (data tasks run on it)")
    endpoints = req(data, "endpoints")
    taint = req(data, "gpuTaint")
    model = req(data, "model")
    shared = req(data, "sharedVolume")
    return PlatformConfig(
        namespaces=dict(req(data, "namespaces")),
        buckets=dict(req(data, "buckets")),
        model_name=str(req(model, "name", "model.")),
        experiment=str(req(model, "experiment", "model.")),
        trainer_image=str(req(req(data, "images"), "trainer", "images.")),
        image_pull_secrets=tuple(str(s) for s in data.get("imagePullSecrets") or ()),
        service_account_name=data.get("serviceAccountName") or None,
        shared_volume=SharedVolume(
            claim_name=str(req(shared, "claimName", "sharedVolume.")),
            mount_path=str(req(shared, "mountPath", "sharedVolume.")),
        )
        if shared
        else None,
        mlflow_tracking_uri=str(req(endpoints, "mlflowTrackingUri", "endpoints.")),
        s3_endpoint_url=str(req(endpoints, "s3EndpointUrl", "endpoints.")),
        s3_region=str(req(endpoints, "s3Region", "endpoints.")),
        object_store_secret=_secret_env(
            req(data, "objectStoreSecret"),
            "objectStoreSecret.",
            {"AWS_ACCESS_KEY_ID": "accessKeyKey", "AWS_SECRET_ACCESS_KEY": "secretKeyKey"},
            req,
        ),
        mlflow_auth_secret=_secret_env(
            data.get("mlflowAuthSecret"),
            "mlflowAuthSecret.",
            {"MLFLOW_TRACKING_USERNAME": "usernameKey", "MLFLOW_TRACKING_PASSWORD": "passwordKey"},
            req,
        ),
        object_store_conn_id=str(req(data, "objectStoreConnectionId")),
        gpu_taint=GpuTaint(
            key=str(req(taint, "key", "gpuTaint.")),
            value=str(req(taint, "value", "gpuTaint.")),
            effect=str(req(taint, "effect", "gpuTaint.")),
        ),
        profiles=profiles,
        source=source,
    )


def read_platform_config(path: str | os.PathLike[str] | None = None) -> PlatformConfig:
    """Read `path`, else `$ML_PLATFORM_CONFIG`, else the packaged defaults (no caching)."""
    candidate = Path(path) if path else None
    if candidate is None and pipeline_settings().config_path:
        candidate = Path(pipeline_settings().config_path)  # type: ignore[arg-type]
    if candidate is None or not candidate.is_file():
        candidate = DEFAULTS_PATH
    try:
        data = json.loads(candidate.read_text())
    except json.JSONDecodeError as exc:
        raise PlatformConfigError(f"{candidate} is not valid JSON: {exc}") from None
    return parse_platform_config(data, str(candidate))


@cache
def platform_config() -> PlatformConfig:
    """The platform config of this process (read once)."""
    return read_platform_config()
