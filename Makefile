# Two commands for a new user: `make demo` and `make test`. Both set up .venv themselves.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

# The demo dataset: about 2M REES46-shaped events over Oct-Dec 2019, one csv.gz per month.
DEMO_EVENTS ?= 2000000
DEMO_START ?= 2019-10-01
DEMO_DAYS ?= 92
DEMO_SEED ?= 42
DATA_DIR ?= data/synth

export DBT_PROFILES_DIR := $(CURDIR)
export REES46_EVENTS ?= $(DATA_DIR)/events/*.csv.gz

.PHONY: help install data build report demo test lint clean bench bench-env

help:
	@echo "make demo   install, generate ~2M events, dbt build, print headline figures"
	@echo "make test   the whole test suite (pytest: python package, dbt, sqlfluff)"
	@echo "make data | build | report | lint | clean"
	@echo "make bench SIZE=1M|10M|67.5M|all   benchmark (see BENCHMARKS.md)"

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

data: install
	$(BIN)/python -m ml.synth --events $(DEMO_EVENTS) --start $(DEMO_START) \
		--days $(DEMO_DAYS) --seed $(DEMO_SEED) --format csv.gz --split month --out $(DATA_DIR)

build: install
	$(BIN)/dbt build

report: install
	$(BIN)/python -m ml.report

demo: data build report

# Two workers, one test file each: the dbt runs of one file share its fixtures.
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: install
	$(BIN)/sqlfluff lint models tests/dbt analyses

# The benchmark (bench/run.py, BENCHMARKS.md). pyspark, for the Spark baseline only, lives in
# its own venv so that `make install` never pulls it.
SIZE ?= 1M
BENCH_ARGS ?=
BENCH_VENV := .venv-bench

bench-env: $(BENCH_VENV)/.installed

$(BENCH_VENV)/.installed: bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

bench: install bench-env
	BENCH_MAKE_COMMAND="make bench SIZE=$(SIZE)" \
		$(BIN)/python -m bench.run --size $(SIZE) $(BENCH_ARGS)

clean:
	rm -rf target logs warehouse/*.duckdb warehouse/*.wal $(DATA_DIR)
