# Two commands from a bare checkout: `make run` and `make test`.
# Each creates .venv if missing and installs the package with its pinned dependencies first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NPROC ?= 2

.PHONY: run test mutants bench studies dots dmc clean-venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/mpiexec -n $(NPROC) $(BIN)/vmc run inputs/default.toml --force

test: $(STAMP)
	$(BIN)/ruff check vmc tests benchmarks docs examples
	$(BIN)/python -m pytest -q

# Plant each known bug of tests/mutants/mutants.toml in a copy of the tree and require the tests to fail
# (about 25 CPU minutes, 15 minutes on 2 free cores; every mutant recompiles the numba kernels).
mutants: $(STAMP)
	$(BIN)/python tests/mutants/run.py --jobs $(NPROC)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_sampling.py --with-c-limit
	$(BIN)/python benchmarks/bench_scaling.py

# Every parameter study in inputs/studies, then docs/results.md and docs/figures/ from their output.
STUDIES := $(wildcard inputs/studies/*.toml)
studies: $(STAMP)
	@mkdir -p runs/studies
	for f in $(STUDIES); do \
	  out=runs/studies/$$(basename $$f .toml).h5; \
	  if [ -f $$out ]; then $(BIN)/mpiexec -n $(NPROC) $(BIN)/vmc run --resume $$out --quiet; \
	  else $(BIN)/mpiexec -n $(NPROC) $(BIN)/vmc run $$f -o $$out --quiet; fi || exit 1; \
	done
	$(BIN)/python docs/make_results.py $(patsubst inputs/studies/%.toml,runs/studies/%.h5,$(STUDIES)) $(wildcard runs/dots/*.h5)

# The closed-shell quantum dots at omega = 1 (about 35 minutes on 2 cores); `make studies` then tabulates them.
DOTS := 2d_n2 2d_n6 2d_n12 2d_n20 3d_n8
dots: $(STAMP)
	@mkdir -p runs/dots
	for c in $(DOTS); do $(BIN)/mpiexec -n $(NPROC) $(BIN)/vmc run inputs/dots/$$c.toml -o runs/dots/$$c.h5 --force --quiet || exit 1; done

# Fixed-node DMC of the closed shells from the optimized states of `make dots` (runs/dots/*.h5), with a
# time-step extrapolation for N = 6; then the DMC section of docs/results.md.
DMC_CASES := 2d_n2 2d_n6 2d_n12 2d_n20 3d_n8
dmc: $(STAMP)
	@mkdir -p runs/dmc
	for c in $(DMC_CASES); do \
	  test -f runs/dots/$$c.h5 || $(BIN)/mpiexec -n $(NPROC) $(BIN)/vmc run inputs/dots/$$c.toml -o runs/dots/$$c.h5 --quiet || exit 1; \
	  if [ -f runs/dmc/$$c.h5 ]; then $(BIN)/mpiexec -n $(NPROC) $(BIN)/vmc run --resume runs/dmc/$$c.h5 --quiet; \
	  else $(BIN)/mpiexec -n $(NPROC) $(BIN)/vmc run inputs/dmc/$$c.toml -o runs/dmc/$$c.h5 --quiet; fi || exit 1; \
	done
	$(BIN)/python docs/make_results.py $(patsubst %,runs/dmc/%.h5,$(DMC_CASES))

clean-venv:
	rm -rf $(VENV)
