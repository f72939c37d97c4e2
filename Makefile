# ml-platform — every set-up step a fresh machine needs, pinned.
# `make demo` and `make test` are the two commands; each installs what it needs.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON      ?= python3.11
UV_VERSION  := 0.13.9
HELM_VERSION  := v3.22.0
# MinIO publishes source only; this is the pseudo-version of its last tagged source (2026-02-12).
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c

TOOLS   := $(CURDIR)/.tools
BIN     := $(TOOLS)/bin
UV      := $(TOOLS)/uv/bin/uv
VENV    := $(CURDIR)/.venv
PY      := $(VENV)/bin/python
CHECKOV := $(TOOLS)/checkov/bin/checkov
export PATH := $(BIN):$(VENV)/bin:$(PATH)
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# ---------------------------------------------------------------- set-up
$(UV):
	@echo ">> bootstrapping uv $(UV_VERSION) into .tools/uv"
	@$(PYTHON) -m venv $(TOOLS)/uv
	@$(TOOLS)/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml images/trainer/pyproject.toml scripts/devstack/pyproject.toml
	@echo ">> syncing .venv from uv.lock (first run downloads torch: ~2.5 GB)"
	@$(UV) sync --frozen --python $(PYTHON)
	@touch $@

.PHONY: venv
venv: $(VENV)/.synced ## create .venv from uv.lock

$(BIN)/helm:
	@echo ">> building helm $(HELM_VERSION) into .tools/bin (go install, ~1 min)"
	@GOBIN=$(BIN) go install -trimpath helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

$(BIN)/minio:
	@echo ">> building the MinIO server $(MINIO_VERSION) into .tools/bin (go install, several minutes on 2 cores)"
	@GOBIN=$(BIN) go install -trimpath github.com/minio/minio@$(MINIO_VERSION)

$(CHECKOV): scripts/tools/checkov.lock.txt $(UV)
	@echo ">> installing checkov into its own venv .tools/checkov (its pins clash with Airflow's)"
	@$(UV) venv --quiet --allow-existing --python $(PYTHON) $(TOOLS)/checkov
	@$(UV) pip install --quiet --python $(TOOLS)/checkov/bin/python --require-hashes -r scripts/tools/checkov.lock.txt
	@touch $@

.PHONY: tools
tools: $(BIN)/helm $(BIN)/minio $(CHECKOV) ## build helm and minio, install checkov (project-local, cached)

.PHONY: setup
setup: venv tools ## everything the tests and the demo need

# ---------------------------------------------------------------- checks
.PHONY: lint
lint: setup ## ruff, ruff format --check, ruff AIR rules, yamllint, hadolint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check --select AIR dags
	$(VENV)/bin/yamllint --strict .
	@dockerfiles=$$(git ls-files '*Dockerfile*'); if [ -n "$$dockerfiles" ]; then $(VENV)/bin/hadolint $$dockerfiles; fi

.PHONY: test
test: setup ## run every test (starts and stops its own servers)
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: bench
bench: setup ## run the benchmarks, write bench/results/*.json and print a table
	$(PY) -m bench $(BENCH_ARGS)

.PHONY: clean
clean: ## stop the local stack and remove local state (keeps .venv and .tools)
	-@[ -x $(VENV)/bin/devstack ] && $(VENV)/bin/devstack down
	rm -rf .local bench/results .pytest_cache .ruff_cache

.PHONY: distclean
distclean: clean ## also remove .venv and .tools
	rm -rf $(VENV) $(TOOLS)
