# vanguard-did: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.12 is required. Where pyenv manages interpreters, PYENV_VERSION picks its 3.12.
PYTHON ?= python3.12
export PYENV_VERSION ?= 3.12
VENV ?= .venv
BIN := $(VENV)/bin
PARAMS ?= default
export MPLBACKEND := Agg

STAMP := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark

.PHONY: help install report test test-spark lab lint clean bench data-nhs golden

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 12), sys.version' \
		|| { echo "Python 3.12 is required: set PYTHON=/path/to/python3.12"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name vanguard-did --display-name "Python (vanguard-did)" > /dev/null
	touch $(STAMP)

install: $(STAMP) ## Create the virtual environment and install the project

report: $(STAMP) ## Run the full report (PARAMS=default|ci|nhs_mar|<your yaml>) into reports/<run>/
	$(BIN)/vanguard-report --params $(PARAMS)

test: $(STAMP) ## Run every test: unit tests, notebook validation (nbval), parameter-set checks
	@# pytest exits 5 when it collected nothing: a suite that tests nothing is a failure.
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(SPARK_STAMP)

test-spark: $(SPARK_STAMP) ## Spark equality tests: installs the spark extra, and Java 17 if missing
	@# Spark needs a Java runtime; Debian's packages provide one (root installs it here).
	@if ! command -v java > /dev/null 2>&1 && [ ! -x "$${JAVA_HOME:-/nonexistent}/bin/java" ]; then \
	  if [ "$$(id -u)" -eq 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; \
	  else \
	    echo "Spark needs Java 17+: sudo apt-get install -y openjdk-17-jre-headless" >&2; exit 1; \
	  fi; \
	fi
	@# VANGUARD_REQUIRE_SPARK=1: a missing pyspark or Java fails the tests instead of skipping them.
	VANGUARD_REQUIRE_SPARK=1 $(BIN)/python -m pytest -m spark tests/test_spark.py $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no Spark tests" >&2; exit 1; fi; exit $$rc

lab: $(STAMP) ## Open JupyterLab in the project environment (kernel "vanguard-did")
	$(BIN)/jupyter lab --notebook-dir=notebooks

lint: $(STAMP) ## Lint and format-check with ruff
	$(BIN)/ruff check src tests notebooks benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(STAMP) ## Benchmarks: report wall time, estimators vs raw library calls, scale; writes reports/bench/
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

data-nhs: $(STAMP) ## Download the NHS England Monthly Activity Return files (verifies sha256)
	$(BIN)/vanguard-data-nhs

golden: $(STAMP) ## Deliberately refresh the reference notebooks and headline snapshots
	$(BIN)/python -m vanguard.pipeline --params ci --golden
	VANGUARD_REFRESH_SNAPSHOTS=1 $(BIN)/python -m pytest -q tests/test_snapshots.py

clean: ## Remove the environment, processed data and generated reports
	rm -rf $(VENV) data/processed/* reports/* .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	touch data/processed/.gitkeep reports/.gitkeep
