# Two commands do all the set-up from a fresh clone:
#   make run    start the whole product (web UI + worker, SQLite, demo data, file:// provider)
#   make test   run every test, on SQLite and on PostgreSQL, and the browser test in Chromium
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export CRMSMS_DATA_DIR ?= $(CURDIR)/var
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test
BENCH_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: run install test test-sqlite test-postgres services browser-deps gateways bench clean

$(BIN)/crmsms: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/crmsms

run: install
	$(BIN)/crmsms migrate --verbosity 0
	$(BIN)/crmsms load-demo
	$(BIN)/crmsms run --port $(PORT) --simulator

services:
	scripts/ensure-services

browser-deps:
	scripts/ensure-chromium

gateways:
	scripts/ensure-gateways

test: install services browser-deps gateways test-sqlite test-postgres

test-sqlite: install
	CRMSMS_DATA_DIR=$(CURDIR)/var/test-sqlite $(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)

test-postgres: install
	CRMSMS_DATA_DIR=$(CURDIR)/var/test-postgres CRMSMS_CONN_MAX_AGE=0 DATABASE_URL=$(POSTGRES_URL) $(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)

# Every figure next to its limit measured in the same run, as `BENCH name value=... limit=...
# ratio=...` lines, then a table (bench/table.py). About 12 minutes on 2 cores; LARGE=1 (the
# generation script's --large) also generates a 1,000,000-recipient campaign on PostgreSQL.
BENCH_PAGES ?= 1000000
BENCH_CONTACTS ?= 100000
# `crmsms worker --processes`: one per core (the 4 sending threads spread over them)
BENCH_PROCESSES ?= 2
bench: install services gateways
	rm -f var/bench/results.jsonl
	$(BIN)/python bench/generation_throughput.py --recipients 100000
	$(BIN)/python bench/generation_throughput.py --recipients 100000 --database-url $(BENCH_POSTGRES_URL)
	$(BIN)/python bench/generation_throughput.py --large
	$(if $(LARGE),$(BIN)/python bench/generation_throughput.py --large --database-url $(BENCH_POSTGRES_URL))
	$(BIN)/python bench/dispatch_worker.py --latency-ms 0 --processes $(BENCH_PROCESSES)
	$(BIN)/python bench/dispatch_worker.py --latency-ms 0 --processes $(BENCH_PROCESSES) --database-url $(BENCH_POSTGRES_URL)
	$(BIN)/python bench/dispatch_worker.py --latency-ms 100 --processes $(BENCH_PROCESSES)
	$(BIN)/python bench/dispatch_worker.py --latency-ms 100 --processes $(BENCH_PROCESSES) --database-url $(BENCH_POSTGRES_URL)
	$(BIN)/python bench/dispatch_throughput.py --messages 2000
	$(BIN)/python bench/dispatch_throughput.py --messages 2000 --database-url $(BENCH_POSTGRES_URL)
	$(BIN)/python bench/dispatch_kannel.py --processes $(BENCH_PROCESSES)
	-$(if $(shell command -v cc),$(BIN)/python bench/dispatch_kannel.py --processes $(BENCH_PROCESSES) --nodelay --repeat 2,@echo "no C compiler: dispatch_kannel_nodelay skipped (apt-get install gcc)")
	$(BIN)/python bench/dlr_ingest.py
	$(BIN)/python bench/dlr_ingest.py --database-url $(BENCH_POSTGRES_URL)
	$(BIN)/python bench/api_load.py
	$(BIN)/python bench/due_latency.py
	$(BIN)/python bench/render_throughput.py --recipients 100000
	$(BIN)/python bench/campaign_pages.py --messages $(BENCH_PAGES) --contacts $(BENCH_CONTACTS)
	$(BIN)/python bench/campaign_pages.py --messages $(BENCH_PAGES) --contacts $(BENCH_CONTACTS) --database-url $(BENCH_POSTGRES_URL)
	$(BIN)/python bench/table.py

clean:
	rm -rf $(VENV) var build src/*.egg-info
