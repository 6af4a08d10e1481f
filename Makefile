# mast — make targets.  `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
MAST    = $(BIN)/mast
DATASET ?= a9a
QUICK  ?=
JOBS   ?= 2
PYTEST  = $(BIN)/python -m pytest

.PHONY: install install-test run test fuzz verify mutants bench reproduce gpu-check clean help

help:
	@echo "make run        install, run a short experiment on bundled data, draw its figure"
	@echo "make test       install, run the test suite (CI runs exactly this)"
	@echo "make fuzz       property-based fuzzing of the CLI (FUZZ_EXAMPLES per test, default 700)"
	@echo "make verify     full numerical check of every lemma/theorem on all bundled datasets"
	@echo "make mutants    mast verify --quick against every mutant of the catalogue (mutants/)"
	@echo "make bench      performance benchmarks (QUICK=1 for a short version)"
	@echo "make reproduce  every paper figure (DATASET=a9a by default; DATASET=a5a downloads)"
	@echo "make gpu-check  GPU-vs-CPU agreement tests + device timing table (needs an NVIDIA GPU)"

# `make run` needs the runtime dependencies only; `make test` adds the test extras (pytest, dask).
$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# The main job on bundled data: Algorithm 1 with Bernoulli sketches at three sparsity
# levels on a1a (test split a1a.t), then its convergence figures in plots/.
run: install
	$(MAST) constants --dataset a1a --sketch bernoulli --p 0.5
	$(MAST) run --dataset a1a --sketch bernoulli --sparsity 0.1,0.5,0.9 --iters 500 --seeds 5 --out results/run
	$(MAST) plot results/run --metric erm_loss --out plots
	$(MAST) plot results/run --metric test_accuracy --out plots

# pytest exits 5 when it collected no tests: that is a failure here.
test: install-test
	$(PYTEST) -q -m "not slow"; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

# Property-based fuzzing (tests/test_fuzz.py, hypothesis): generated LIBSVM files, option values
# and TOML files through the CLI; FUZZ_EXAMPLES per test (3 tests), then the outcome counts.
FUZZ_EXAMPLES ?= 700
fuzz: install-test
	MAST_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) MAST_FUZZ_REPORT=.fuzz-counts.json $(PYTEST) -q -p no:cacheprovider tests/test_fuzz.py
	@$(BIN)/python -c "import json; c = json.load(open('.fuzz-counts.json')); \
	  print('fuzz cases:', sum(v for k, v in c.items() if not k.endswith('compared')), '|', \
	        ', '.join(f'{k} {v}' for k, v in sorted(c.items())), '| properties violated: 0')"

# Full numerical check of every lemma/theorem (`mast verify`, default battery) on every bundled
# dataset, then the slow verify tests.  Fails if any check is violated.  (`make test` runs the
# quick battery on a1a and heart_scale through tests/test_verify.py.)
VERIFY_DATASETS ?= a1a a9a mushrooms breast-cancer w1a heart_scale
verify: install-test
	@set -e; for ds in $(VERIFY_DATASETS); do \
	  echo "== mast verify --dataset $$ds"; \
	  $(MAST) verify --dataset $$ds --out results/verify/$$ds --quiet; \
	done
	$(PYTEST) -q -m slow tests/test_verify.py tests/test_verify_new_checks.py tests/test_dask_cluster.py
	$(MAKE) mutants

# The mutation catalogue (mutants/catalogue.py): `mast verify --quick` on heart_scale and a1a
# (ridge, then logreg) against each realistic bug, applied in memory in a subprocess; prints
# a table and `mutants killed: K/N`, exits non-zero when K < N.  MUTANTS_ARGS="--only NAME".
mutants: install
	$(BIN)/python -m mutants $(MUTANTS_ARGS)

# Performance benchmarks (benchmarks/README.md): eight side-by-side figures, printed as a table and
# written to benchmarks/results.json.  QUICK=1: a few minutes (no full `mast reproduce`, small generated cases only).
# CLOCK=cpu: time kernels by process CPU time (shared machines; wall time is recorded for figure 6 regardless).
bench: install-test
	$(BIN)/python benchmarks/run.py $(if $(QUICK),--quick) $(if $(CLOCK),--clock $(CLOCK))

# Every paper figure (experiments/*.toml) on DATASET (bundled a9a by default; a5a downloads).
reproduce: install
	$(MAST) reproduce --dataset $(DATASET) --jobs $(JOBS)

# The fused-kernel check, the device timing table and the GPU-vs-CPU agreement tests (pytest -m gpu),
# written to $GPU_OUT (else $OUT, else benchmarks/gpu_results/), ~3.5 min on one H200; no install step, so it also runs
# on a machine without network (python3 with CuPy, this checkout on PYTHONPATH).  Without a GPU
# it says so in one line and exits 3.  See benchmarks/gpu_check.sh.
gpu-check:
	@bash benchmarks/gpu_check.sh

clean:
	rm -rf build dist *.egg-info .pytest_cache
