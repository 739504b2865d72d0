# One entry point for people and CI.  `make test` is the README's test command and
# what .ci/run calls: install, build or reuse the control plane, quality gates,
# then every test tier against a real API server, then a check for leftovers.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
KIND ?= kind
KIND_CLUSTER ?= rollback-e2e
KIND_KUBECONFIG ?= /tmp/rollback-kind-kubeconfig

.PHONY: test install controlplane lint pytest demo kind-test cluster-up cluster-down

test: install controlplane lint pytest

# The virtualenv and an editable install with the dev extra; redone when pyproject changes.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Builds once (10-30 min on two cores), then reuses ~/.cache/rollback-controller/<versions>.
controlplane:
	bash hack/build-control-plane.sh >/dev/null

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict controller
	$(BIN)/lint-imports

# ROLLBACK_E2E=require: a missing control plane fails the run instead of skipping.
# The tag marks every process the tests start, so leftovers are found precisely
# even while other clusters run on the same machine.
pytest: install
	@tag="make-$$$$-$$RANDOM"; rc=0; \
	ROLLBACK_CP_TAG="$$tag" ROLLBACK_E2E=require $(BIN)/pytest $(PYTEST_ARGS) || rc=$$?; \
	left="$$($(BIN)/python hack/localcluster.py ps --tag "$$tag")"; \
	if [[ -n "$$left" ]]; then \
	  echo "error: the tests left control-plane processes running:"; echo "$$left"; exit 1; \
	fi; \
	echo "no etcd, kube-* or kwok process left behind"; exit $$rc

# Quick start, first command: the main job on a bundled example.
demo: install
	$(BIN)/rollback assess --snapshot examples/bad-image-rollout.yaml --incident-start 2026-12-03T10:08:00Z

# A control plane to poke at by hand: `eval "$$(make -s cluster-up)"`, then kubectl.
cluster-up: install controlplane
	@$(BIN)/python hack/localcluster.py up --background

cluster-down:
	@$(BIN)/python hack/localcluster.py down

# For Docker users: the same e2e suite on a kind cluster made from kind-config.yaml.
kind-test: install
	$(KIND) create cluster --name $(KIND_CLUSTER) --config kind-config.yaml \
	  --kubeconfig $(KIND_KUBECONFIG) $(if $(KIND_NODE_IMAGE),--image $(KIND_NODE_IMAGE))
	@rc=0; \
	KIND="$(KIND)" bash hack/kind-images.sh $(KIND_CLUSTER) || rc=$$?; \
	if [[ $$rc -eq 0 ]]; then \
	  ROLLBACK_TEST_KUBECONFIG=$(KIND_KUBECONFIG) ROLLBACK_E2E=require \
	    $(BIN)/pytest -m e2e $(PYTEST_ARGS) || rc=$$?; \
	fi; \
	$(KIND) delete cluster --name $(KIND_CLUSTER) --kubeconfig $(KIND_KUBECONFIG); \
	rm -f $(KIND_KUBECONFIG); exit $$rc
