# Two commands from a bare checkout: `make run` and `make test`.
# Each creates .venv if missing and installs the package with its pinned dependencies first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NPROC ?= 2

.PHONY: run test bench clean-venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/mpiexec -n $(NPROC) $(BIN)/vmc run inputs/default.toml --force

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_sampling.py

clean-venv:
	rm -rf $(VENV)
