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

# The standard table of closed-shell quantum dots (docs/dots.py: 2D N = 2-56, 3D N = 8 and 20, omega = 1-0.1):
# every cell's VMC (`make dots`) and fixed-node DMC from the optimized state (`make dmc`); a complete cell is
# skipped and an unfinished one resumed, so both continue where they stopped. Then docs/dots.csv and the table
# in docs/results.md. `python docs/dots.py plan` shows what is done.
dots: $(STAMP)
	$(BIN)/python docs/dots.py run vmc --ranks $(NPROC); rc=$$?; $(BIN)/python docs/dots.py table; exit $$rc

dmc: $(STAMP)
	$(BIN)/python docs/dots.py run dmc --ranks $(NPROC); rc=$$?; $(BIN)/python docs/dots.py table; exit $$rc

clean-venv:
	rm -rf $(VENV)
