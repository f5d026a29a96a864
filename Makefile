# The words people type. Every target creates .venv and installs what it needs on first use.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)/shared:$(CURDIR)/jobs:$(CURDIR)
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: install demo test lint unit integration bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	# uv does not read pip.conf: point it at the local CPU build of torch (see README)
	$(BIN)/uv pip install -q --python $(BIN)/python $(if $(wildcard /opt/wheels),--find-links /opt/wheels) -e '.[dev]'
	touch $@

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared/lepton functions

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .localcloud .aws-sam .pytest_cache .mypy_cache .ruff_cache
