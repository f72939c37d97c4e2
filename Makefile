# ml-platform — every set-up step a fresh machine needs, pinned.
# `make demo` and `make test` are the two commands; each installs what it needs.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON      ?= python3.11
UV_VERSION  := 0.13.9
HELM_VERSION  := v3.22.0
# What a release build of that helm stamps in (its client-go is v0.37 → Kubernetes 1.37), so that
# `helm template` and `helm lint` assume the same cluster version as the published binary.
HELM_KUBE_MINOR := 37
HELM_LDFLAGS := -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) -X helm.sh/helm/v3/internal/version.metadata= \
  $(foreach pkg,pkg/chartutil pkg/lint/rules,-X helm.sh/helm/v3/$(pkg).k8sVersionMajor=1 -X helm.sh/helm/v3/$(pkg).k8sVersionMinor=$(HELM_KUBE_MINOR))
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
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# ---------------------------------------------------------------- set-up
$(UV):
	@echo ">> bootstrapping uv $(UV_VERSION) into .tools/uv"
	@$(PYTHON) -m venv $(TOOLS)/uv
	@$(TOOLS)/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml $(wildcard images/*/pyproject.toml scripts/*/pyproject.toml)
	@echo ">> syncing .venv from uv.lock (first run downloads torch: ~2.5 GB; byte-compiles once so every process starts fast)"
	@$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

.PHONY: venv
venv: $(VENV)/.synced ## create .venv from uv.lock

$(BIN)/helm:
	@echo ">> building helm $(HELM_VERSION) into .tools/bin (go install, ~1 min)"
	@GOBIN=$(BIN) go install -trimpath -ldflags "$(HELM_LDFLAGS)" helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

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

# ---------------------------------------------------------------- generated files
# Files derived from another one are written by these targets, never by hand; each has a test
# that regenerates it and fails while the committed copy is stale (the message names the target).
.PHONY: generate
generate: generate-platform-defaults generate-values-reference generate-trainer-options ## regenerate every generated file

.PHONY: generate-platform-defaults
generate-platform-defaults: $(VENV)/.synced $(BIN)/helm ## platform_defaults.json (helm) + kind's GPU pools, from the chart's values
	$(VENV)/bin/devstack generate

.PHONY: generate-values-reference
generate-values-reference: $(VENV)/.synced ## docs/chart.md's values reference, from the chart's schema + values
	$(PY) tests/chart/values_reference.py --write

.PHONY: generate-trainer-options
generate-trainer-options: $(VENV)/.synced ## dags/ml_pipeline/trainer_options.json from the trainer's option dataclasses
	$(PY) scripts/generate_trainer_options.py dags/ml_pipeline/trainer_options.json

# ---------------------------------------------------------------- checks
.PHONY: lint
lint: setup ## ruff, ruff format --check, ruff AIR rules, yamllint, hadolint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check --select AIR dags
	$(VENV)/bin/yamllint --strict .
	@dockerfiles=$$(git ls-files '*Dockerfile*' | grep -v '\.dockerignore$$'); if [ -n "$$dockerfiles" ]; then $(VENV)/bin/hadolint $$dockerfiles; fi

# PYTEST_ARGS go to pytest, e.g. `make test PYTEST_ARGS="tests/chart -x -k secrets"`.
.PHONY: test
test: setup cluster-tools ## run every test (starts and stops its own servers and control plane)
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: test-fast
test-fast: setup ## the daily loop: unit, render and pod-spec tests (no servers, no control plane)
	$(PY) -m pytest -m "not stack and not slow and not cluster" $(PYTEST_ARGS)

.PHONY: fmt
fmt: venv ## ruff --fix and ruff format, in place
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

.PHONY: hooks
hooks: venv ## install the git pre-commit hook (.pre-commit-config.yaml: ruff, ruff format, yamllint)
	$(VENV)/bin/pre-commit install

.PHONY: bench
bench: setup ## run the benchmarks, write bench/results/*.json and print a table
	$(PY) -m bench $(BENCH_ARGS)

.PHONY: clean
clean: ## stop the local stack and the harness, remove local state (keeps .venv and .tools)
	-@[ -x $(VENV)/bin/devstack ] && $(VENV)/bin/devstack down
	-@[ -x $(VENV)/bin/devstack ] && $(VENV)/bin/devstack cluster down
	rm -rf .local bench/results .pytest_cache .ruff_cache

.PHONY: distclean
distclean: clean ## also remove .venv and .tools
	rm -rf $(VENV) $(TOOLS)

# ================================================================ dev loop: kind + skaffold
# Owned by the dev-loop part (docs/dev-loop.md). docker, kubectl and skaffold are CLIs you
# install; kind is taken from PATH or built into .tools/bin with `go install` (pinned below);
# helm is the project's .tools/bin/helm. Each target names the CLI it misses.
KIND_VERSION := v0.33.0
KIND_CLUSTER := ml-platform
KIND_CONTEXT := kind-$(KIND_CLUSTER)

define require_cli
	@command -v $(1) >/dev/null 2>&1 || { echo "make: '$(1)' is not on PATH - $(2) (docs/dev-loop.md, Prerequisites)" >&2; exit 1; }
endef

$(BIN)/kind:
	$(call require_cli,go,install kind yourself (https://kind.sigs.k8s.io) or install Go so make can build kind $(KIND_VERSION) into .tools/bin)
	@echo ">> building kind $(KIND_VERSION) into .tools/bin"
	@GOBIN=$(BIN) go install sigs.k8s.io/kind@$(KIND_VERSION)

.PHONY: kind-tool
kind-tool: ## kind from PATH, else build kind into .tools/bin
	@command -v kind >/dev/null 2>&1 || $(MAKE) --no-print-directory $(BIN)/kind

.PHONY: kind-up
kind-up: kind-tool $(VENV)/.synced ## create the kind cluster (CPU + fake A100/H100 workers) for `make dev`
	$(call require_cli,docker,install Docker Engine or Docker Desktop and start it)
	$(call require_cli,kubectl,install kubectl (https://kubernetes.io/docs/tasks/tools/))
	@docker info >/dev/null 2>&1 || { echo "make: the Docker daemon is not reachable - start Docker" >&2; exit 1; }
	@if kind get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)'; then echo ">> kind cluster $(KIND_CLUSTER) exists"; \
	else cd $(CURDIR) && kind create cluster --config k8s/kind/cluster.yaml --wait 180s; fi
	$(MAKE) --no-print-directory kind-gpus
	kubectl --context $(KIND_CONTEXT) apply -f k8s/kind/dags-volume.yaml

.PHONY: kind-gpus
kind-gpus: $(VENV)/.synced ## (re)advertise fake nvidia.com/gpu on the kind GPU workers
	$(PY) k8s/kind/fake_gpus.py --context $(KIND_CONTEXT)

.PHONY: kind-down
kind-down: kind-tool ## delete the kind cluster
	kind delete cluster --name $(KIND_CLUSTER)

.PHONY: dev
dev: $(BIN)/helm ## skaffold dev -p kind: build, deploy, port-forward, rebuild on change
	$(call require_cli,skaffold,install skaffold v2.19+ (https://skaffold.dev/docs/install/))
	$(call require_cli,docker,install Docker Engine or Docker Desktop and start it)
	$(call require_cli,kubectl,install kubectl (https://kubernetes.io/docs/tasks/tools/))
	@kubectl config get-contexts -o name | grep -qx '$(KIND_CONTEXT)' || { echo "make: no kubeconfig context $(KIND_CONTEXT) - run 'make kind-up' first" >&2; exit 1; }
	skaffold dev -p kind --kube-context $(KIND_CONTEXT)
# ================================================================ end dev loop

# ================================================================ local Airflow (scripts/devstack)
UP_ARGS ?=

.PHONY: up
up: setup ## local stack + a real Airflow (UI, scheduler, dag-processor, triggerer); prints URLs and login
	$(VENV)/bin/devstack up --airflow $(UP_ARGS)

.PHONY: down
down: ## stop the local stack (data is kept)
	-@[ -x $(VENV)/bin/devstack ] && $(VENV)/bin/devstack down
# ================================================================ end local Airflow

# ================================================================ demo: the pipeline story (dags/)
DEMO_ARGS ?=

.PHONY: demo
demo: setup ## run 3 days of the pipeline locally, print the summary, stop (DEMO_ARGS=--keep-ui / --real)
	$(PY) scripts/demo.py $(DEMO_ARGS)
# ================================================================ end demo

# ================================================================ cluster harness: a real control plane
# tests/cluster installs the chart into a real kube-apiserver and places the pipeline's pods with
# a real kube-scheduler on kwok-simulated GPU nodes (docs/cluster-harness.md). Every pin lives in
# the go.mod of its harness module under k8s/harness/; the binaries are rebuilt only when one of
# those files changes (cold: ~17 min on 2 cores, mostly kube-apiserver; cached afterwards).
HARNESS := k8s/harness
harness_pin = $(shell awk '$$1 == "$(2)" && $$2 ~ /^v/ {print $$2; exit}' $(HARNESS)/$(1)/go.mod)
KUBE_VERSION := $(call harness_pin,kube,k8s.io/kubernetes)
KUBE_MAJOR := $(word 1,$(subst ., ,$(patsubst v%,%,$(KUBE_VERSION))))
KUBE_MINOR := $(word 2,$(subst ., ,$(patsubst v%,%,$(KUBE_VERSION))))
# What Kubernetes' own release build stamps in (hack/lib/version.sh): without it the binaries
# report v0.0.0-master and Helm's kubeVersion checks fail.
KUBE_LDFLAGS := -s -w $(foreach pkg,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
  -X $(pkg).gitVersion=$(KUBE_VERSION) -X $(pkg).gitMajor=$(KUBE_MAJOR) -X $(pkg).gitMinor=$(KUBE_MINOR) \
  -X $(pkg).gitTreeState=clean -X $(pkg).buildDate=1970-01-01T00:00:00Z)
KUBE_BINARIES := $(addprefix $(BIN)/,kube-apiserver kube-controller-manager kube-scheduler kubectl)
CLUSTER_BINARIES := $(KUBE_BINARIES) $(BIN)/etcd $(BIN)/kwok

$(KUBE_BINARIES) &: $(HARNESS)/kube/go.mod $(HARNESS)/kube/go.sum
	@echo ">> building the Kubernetes $(KUBE_VERSION) control plane into .tools/bin (go install, ~15 min cold on 2 cores)"
	@cd $(HARNESS)/kube && GOBIN=$(BIN) go install -trimpath -ldflags "$(KUBE_LDFLAGS)" \
	  $(addprefix k8s.io/kubernetes/cmd/,kube-apiserver kube-controller-manager kube-scheduler kubectl)

$(BIN)/etcd: $(HARNESS)/etcd/go.mod $(HARNESS)/etcd/go.sum
	@echo ">> building etcd $(call harness_pin,etcd,go.etcd.io/etcd/server/v3) into .tools/bin"
	@cd $(HARNESS)/etcd && go build -trimpath -ldflags "-s -w" -o $@ go.etcd.io/etcd/server/v3

$(BIN)/kwok: $(HARNESS)/kwok/go.mod $(HARNESS)/kwok/go.sum
	@echo ">> building kwok $(call harness_pin,kwok,sigs.k8s.io/kwok) into .tools/bin"
	@cd $(HARNESS)/kwok && GOBIN=$(BIN) go install -trimpath -ldflags "-s -w" sigs.k8s.io/kwok/cmd/kwok

.PHONY: cluster-tools
cluster-tools: $(CLUSTER_BINARIES) ## build etcd, the Kubernetes control plane and kwok into .tools/bin

.PHONY: cluster-up
cluster-up: venv cluster-tools ## start the harness in .local/cluster by hand (docs/cluster-harness.md)
	$(VENV)/bin/devstack cluster up

.PHONY: cluster-down
cluster-down: ## stop the harness started by `make cluster-up`
	-@[ -x $(VENV)/bin/devstack ] && $(VENV)/bin/devstack cluster down
# ================================================================ end cluster harness
