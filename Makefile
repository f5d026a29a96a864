# The words people type. Every target creates .venv and installs what it needs on first use,
# so `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
export PYTHONPATH := $(CURDIR)/shared:$(CURDIR)/jobs:$(CURDIR)
export AWS_DEFAULT_REGION ?= us-east-1
# uv does not read pip's configuration: point it at the CPU build of torch this machine keeps on
# disk (an unpinned torch from PyPI is a multi-GB CUDA build)
WHEELS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
PYTEST_WORKERS ?= 2

.PHONY: install demo test lint unit integration bench clean local

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install -q --python $(BIN)/python $(WHEELS) -e '.[dev]'
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP) $(NPM_STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	MYPYPATH=shared $(BIN)/mypy -p lepton
	@for fn in functions/*/; do echo "mypy $$fn"; MYPYPATH=shared:$$fn $(BIN)/mypy "$$fn" || exit 1; done
	MYPYPATH=jobs $(BIN)/mypy jobs cli bench localcloud
	$(BIN)/cfn-lint template.yaml stacks/*.yaml
	rm -rf .aws-sam/transformed
	$(BIN)/python -m localcloud.deploy.render template.yaml --out .aws-sam/transformed >/dev/null
	# W1020: the transform substitutes parameter values into Fn::Sub strings (as CloudFormation's does)
	$(BIN)/cfn-lint --ignore-checks W1020 -- .aws-sam/transformed/*.json

test: lint
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

unit: install
	$(BIN)/python -m pytest -q tests/unit

integration: install
	$(BIN)/python -m pytest -q tests/integration tests/statemachine

bench: install
	$(BIN)/uv pip install -q --python $(BIN)/python $(WHEELS) -e '.[dev,bench]'
	$(BIN)/python -m bench

demo: install
	$(BIN)/lepton demo

local: install
	$(BIN)/lepton local up

clean:
	rm -rf $(VENV) node_modules .localcloud .aws-sam .pytest_cache .mypy_cache .ruff_cache
