# The two commands: `make` runs the pipeline on the default study, `make test` runs the test suite.
# Both create .venv from the lock files on first use; Python 3.11, 3.12 or 3.13 is needed.
#   requirements.lock           what the pipeline runs on (and setuptools to install the package)
#   requirements-dev.lock       + tests, lint and formatting (make test, make lint)
#   requirements-notebook.lock  + running notebooks/explore.py as a notebook (make test runs it)
# All three are pinned with hashes (uv pip compile --generate-hashes; make lock).

PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
CORES  ?= all
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: all run test lint format lock synthetic clinics bench python-version

all: run

# An unsupported Python stops here, naming the versions, before pip fails on a missing wheel.
python-version:
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v <= (3, 13) else "cohort needs Python 3.11, 3.12 or 3.13; $(PYTHON) is %d.%d. Use e.g.: make PYTHON=python3.11" % v)'

$(STAMP): requirements.lock pyproject.toml | python-version
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.lock
	$(PIP) --no-deps --no-build-isolation -e .
	touch $(STAMP)

$(DEV): $(STAMP) requirements-dev.lock requirements-notebook.lock
	$(PIP) -r requirements.lock -r requirements-dev.lock -r requirements-notebook.lock
	touch $(DEV)

# The memory that jobs running side by side may use together (MB): each rule declares its
# estimate for the extract's size (rules/common.smk), so that at registry scale two large jobs do
# not run at once beyond it. Raise it on a machine with more memory.
MEMORY_MB ?= 5500
run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --resources mem_mb=$(MEMORY_MB)

# Two pytest-xdist workers: the workflow tests of a file on one (they share its snakemake runs),
# the rest spread over both (tests/conftest.py). TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
test: $(DEV)
	$(BIN)/python -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup)

# Exit 0 when only the documented Snakemake lint remarks remain (cohort.workflow.lint), 1 on any other.
lint: $(DEV)
	$(BIN)/ruff check src scripts tests
	$(BIN)/ruff format --check src scripts tests
	$(BIN)/snakefmt --check Snakefile pool.smk rules
	$(BIN)/python -m cohort lint

format: $(DEV)
	$(BIN)/ruff format src scripts tests
	$(BIN)/snakefmt Snakefile pool.smk rules

# Regenerate the committed synthetic extract and its data dictionary.
synthetic: $(STAMP)
	$(BIN)/python -m cohort synthesize --n 274 --seed 20211022 --out data/raw/synthetic
	$(BIN)/python -m cohort dictionary --contract config/contract.yaml --out data/raw/README.md

# The worked example of pooling (README, "Several clinics"): the default synthetic extract split
# into three clinics (50/30/20%), each run as a site on its own extract, then pooled from the
# three bundles; the bundles are also the test fixtures of tests/test_pooling.py.
CLINICS := clinic_a clinic_b clinic_c
clinics: $(STAMP)
	$(BIN)/python -m cohort synthesize --n 274 --seed 20211022 --sites clinic_a=0.5,clinic_b=0.3,clinic_c=0.2 --out data/raw/clinics
	for site in $(CLINICS); do $(BIN)/snakemake --cores $(CORES) --configfile config/studies/$$site.yaml || exit 1; done
	$(BIN)/snakemake -s pool.smk --cores 1 --configfile config/studies/clinics_pooled.yaml
	for site in $(CLINICS); do cp results/$$site/site_bundle.json tests/fixtures/clinics/$$site.site_bundle.json; done

# Wall time and peak memory per rule on synthetic cohorts (benchmarks/summary.csv; not a test).
# SHARDS=4: each size also from scratch in 4 patient shards, its published files compared.
SIZES ?= 1000 10000 100000 1000000
SHARDS ?= 1
bench: $(STAMP)
	$(BIN)/python -m cohort bench --sizes $(SIZES) --shards $(SHARDS) --memory-mb $(MEMORY_MB)

# Re-resolve the three lock files from pyproject.toml, with hashes: one resolution of every
# group (for Python 3.11, the oldest supported: the same versions install on 3.12 and 3.13),
# then each group constrained to it, so the groups agree on every shared package.
UV_COMPILE = .lockvenv/bin/uv pip compile --quiet --python-version 3.11 pyproject.toml
lock: | python-version
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv && .lockvenv/bin/python -m pip install --quiet uv
	$(UV_COMPILE) --extra build --extra dev --extra notebook --no-header --no-annotate -o .lockvenv/all.txt
	$(UV_COMPILE) --extra build --generate-hashes -c .lockvenv/all.txt -o requirements.lock
	$(UV_COMPILE) --extra dev --generate-hashes -c .lockvenv/all.txt -o requirements-dev.lock
	$(UV_COMPILE) --extra notebook --generate-hashes -c .lockvenv/all.txt -o requirements-notebook.lock
	rm -rf .lockvenv
