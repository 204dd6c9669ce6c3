# The two commands: `make` runs the pipeline on the default study, `make test` runs the test suite.
# Both create .venv from requirements.lock on first use (only Python 3.11 is needed on the machine).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all

.PHONY: all run test lint lock synthetic bench

all: run

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src scripts tests
	$(BIN)/snakemake --lint

# Regenerate the committed synthetic extract and its data dictionary.
synthetic: $(STAMP)
	$(BIN)/python -m cohort synthesize --n 274 --seed 20211022 --out data/raw/synthetic
	$(BIN)/python -m cohort dictionary --contract config/contract.yaml --out data/raw/README.md

# Wall time and peak memory per rule on synthetic cohorts (benchmarks/summary.csv; not a test).
SIZES ?= 1000 10000 100000 1000000
bench: $(STAMP)
	$(BIN)/python -m cohort bench --sizes $(SIZES)

# Re-resolve the lock file from pyproject.toml in a throw-away venv.
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/python -m pip install --quiet -e '.[dev]'
	{ echo "# Lock file: the exact package set that 'make' and 'make test' install (pip install -r)."; \
	  echo "# Regenerate: make lock  (resolves pyproject.toml's dependencies + [dev] in a clean venv)."; \
	  echo "setuptools==80.9.0"; echo "wheel==0.48.0"; \
	  .lockvenv/bin/python -m pip freeze --exclude-editable | grep -v '^cohort'; } > requirements.lock
	rm -rf .lockvenv
