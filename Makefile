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

# SOURCE=online_retail: the UCI Online Retail II invoices (transactions only) instead of the
# REES46 click-stream, in a warehouse, serving copy and dbt target folder of its own, so both
# can be built side by side. The demo reads the real 10-country slice in tests/fixtures.
# Two years of invoices hold 90-day churn and CLV horizons, four weeks apart; baskets are
# invoices, larger than sessions. The guardrail warns: on these 253 real customers churn
# is below the BG/NBD baseline (docs/sources.md), and the report prints the verdicts.
SOURCE ?= rees46
ifeq ($(SOURCE),online_retail)
export ONLINE_RETAIL_INVOICES ?= tests/fixtures/online_retail/online_retail_II__10_countries.csv
export DUCKDB_PATH ?= warehouse/online_retail.duckdb
export REES46_SERVING_DB ?= warehouse/online_retail_serving.duckdb
export REES46_EXPORTS_DIR ?= warehouse/online_retail_exports
export DBT_TARGET_PATH ?= target/online_retail
DBT_ARGS := --vars '{source: online_retail, ml_label_horizon_days: 90, \
	ml_evaluation_step_days: 28, cross_sell_test_days: 56, cross_sell_max_basket_products: 50, \
	ml_guardrail_severity: warn}'
else ifneq ($(SOURCE),rees46)
$(error SOURCE must be rees46 or online_retail, not $(SOURCE))
endif
# The serving copy analysts and BI tools read (see ml/publish.py), and dbt docs.
export REES46_SERVING_DB ?= warehouse/serving.duckdb
export REES46_EXPORTS_DIR ?= warehouse/exports
DOCS_PORT ?= 8080
DOCS_HOST ?= 127.0.0.1

# The dashboard reads the serving copy only.
DASHBOARD_PORT ?= 8501

.PHONY: help install data build build-production evaluate model-cards publish report daily demo docs mf-example test lint clean \
	dashboard screenshots bench bench-env test-bi

help:
	@echo "make demo   install, generate ~2M events, dbt build, publish, print headline figures"
	@echo "make demo SOURCE=online_retail   the same on real Online Retail II invoices"
	@echo "make test   the whole test suite (pytest: python package, dbt, sqlfluff)"
	@echo "make test-bi    a real Superset on the serving copy (own venv .venv-bi, not in make test)"
	@echo "make build-production  the scheduled build: every model trained once, no evaluation"
	@echo "make evaluate   rolling-origin evaluation of every model (intervals, verdicts)"
	@echo "make daily      after a new day's file: the incremental daily run (selectors.yml)"
	@echo "make publish    after a successful build: the read-only serving copy and Parquet"
	@echo "make dashboard  the Streamlit dashboard on the serving copy (DASHBOARD_PORT=$(DASHBOARD_PORT))"
	@echo "make docs       generate and serve dbt docs on http://$(DOCS_HOST):$(DOCS_PORT)"
	@echo "make bench SIZE=1M|10M|67.5M|all   benchmark (see BENCHMARKS.md)"
	@echo "make data | build | report | mf-example | lint | screenshots | clean"

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# --no-compile: byte-compiling every installed module costs ~20 s; Python compiles what
	# it imports on first use.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-compile -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

data: install
ifeq ($(SOURCE),online_retail)
	@echo "Online Retail II invoices: $(ONLINE_RETAIL_INVOICES) (nothing to generate)"
else
	$(BIN)/python -m ml.synth --events $(DEMO_EVENTS) --start $(DEMO_START) \
		--days $(DEMO_DAYS) --seed $(DEMO_SEED) --format csv.gz --split month --out $(DATA_DIR)
endif

# Everything: the production path and the rolling-origin evaluation of every model.
build: install
	$(BIN)/dbt build $(DBT_ARGS)

# What a schedule runs: each model tunes on its latest validation window, trains once and
# scores; the rolling-origin evaluation (selector `evaluate`) is left out.
build-production: install
	$(BIN)/dbt build --selector production $(DBT_ARGS)

# The rolling-origin evaluation alone (after a build): intervals, verdicts, registry.
evaluate: install
	$(BIN)/dbt build --selector evaluate $(DBT_ARGS)

# After a new day's file arrives: staging, sessions and the event-level marts,
# incrementally, with their tests (selectors.yml). `make build` refreshes the rest.
daily: install
	$(BIN)/dbt build --selector daily

# Refuses (and leaves the previous copy) unless the last dbt build succeeded.
publish: install
	$(BIN)/python -m ml.publish

report: install
	$(BIN)/python -m ml.report

# One page per model in docs/models/, from the registry of the last build.
model-cards: install
	$(BIN)/python -m ml.model_cards --out docs/models

# The demo's data are generated with planted truth: the build also scores fraud and price
# elasticity against it (var synth_truth_dir; the registry's planted_truth figures). Fresh
# files keep their names, which the incremental staging has already loaded: the demo
# rebuilds from scratch.
ifeq ($(SOURCE),rees46)
demo: DBT_ARGS = --full-refresh --vars '{synth_truth_dir: $(DATA_DIR)/truth}'
endif
demo: data build publish report

# Own target folder, so the build's run_results.json (which publish checks) stays.
docs: install
	$(BIN)/dbt docs generate --target-path target/docs
	$(BIN)/dbt docs serve --target-path target/docs --host $(DOCS_HOST) \
		--port $(DOCS_PORT) --no-browser

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

# A real BI client on the serving copy (tests/bi/superset_check.py): Superset 6.1.0 and
# duckdb-engine from PyPI in their own venv, never part of `make install`. It works on a
# temporary copy of $(REES46_SERVING_DB) and starts Superset on 127.0.0.1 only.
BI_VENV := .venv-bi

$(BI_VENV)/.installed: tests/bi/requirements.txt
	$(PYTHON) -m venv $(BI_VENV)
	$(BI_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/bi/requirements.txt
	touch $@

test-bi: $(BI_VENV)/.installed
	@test -f $(REES46_SERVING_DB) || { echo "No serving copy at $(REES46_SERVING_DB):" \
		"run make demo (or make build, then make publish)"; exit 1; }
	$(BI_VENV)/bin/python tests/bi/superset_check.py --serving $(REES46_SERVING_DB)

dashboard: install
	@test -f $(REES46_SERVING_DB) || { echo "No serving copy at $(REES46_SERVING_DB):" \
		"run make build, then $(BIN)/python -m ml.publish"; exit 1; }
	PYTHONPATH=$(CURDIR) $(BIN)/streamlit run dashboard/app.py --server.headless true \
		--server.port $(DASHBOARD_PORT) --browser.gatherUsageStats false \
		--client.toolbarMode minimal

# PNGs of the dashboard pages in docs/screenshots, taken with headless Chromium.
screenshots: install
	PYTHONPATH=$(CURDIR) $(BIN)/python -m dashboard.headless --out docs/screenshots

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
	rm -rf target logs warehouse/*.duckdb warehouse/*.wal warehouse/.*.tmp warehouse/.*.lock \
		$(REES46_EXPORTS_DIR) $(DATA_DIR)
