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

.PHONY: help install data build report demo mf-example test lint clean

help:
	@echo "make demo   install, generate ~2M events, dbt build, print headline figures"
	@echo "make test   the whole test suite (pytest: python package, dbt, sqlfluff)"
	@echo "make data | build | report | mf-example | lint | clean"

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

# The semantic layer (MetricFlow, models/**/_*__semantic.yml) after a build: `mf` reads
# target/semantic_manifest.json, which dbt build and dbt parse write. MF_TARGET=serving
# queries the read-only serving copy ($$REES46_SERVING_DB) instead of the warehouse.
MF_TARGET ?= dev
mf-example: install
	$(BIN)/dbt parse --quiet
	DBT_TARGET=$(MF_TARGET) $(BIN)/mf query --metrics revenue,orders,aov,session_conversion_rate \
		--group-by metric_time__month --order metric_time__month --decimals 4

# Two workers, one test file each: the dbt runs of one file share its fixtures.
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: install
	$(BIN)/sqlfluff lint models tests/dbt analyses

clean:
	rm -rf target logs warehouse/*.duckdb warehouse/*.wal $(DATA_DIR)
