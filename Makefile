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

bench: install services
	$(BIN)/python bench/render_throughput.py --recipients 100000
	$(BIN)/python bench/generation_throughput.py --recipients 100000
	$(BIN)/python bench/generation_throughput.py --recipients 100000 --database-url $(BENCH_POSTGRES_URL)
	$(BIN)/python bench/generation_throughput.py --recipients 1000000
	$(BIN)/python bench/generation_throughput.py --recipients 1000000 --database-url $(BENCH_POSTGRES_URL)
	$(BIN)/python bench/campaign_pages.py --recipients 1000000
	$(BIN)/python bench/campaign_pages.py --recipients 1000000 --database-url $(BENCH_POSTGRES_URL)
	$(BIN)/python bench/dispatch_throughput.py --messages 2000
	$(BIN)/python bench/dispatch_throughput.py --messages 2000 --database-url $(BENCH_POSTGRES_URL)
	$(BIN)/python bench/dispatch_throughput.py --messages 2000 --campaign
	$(BIN)/python bench/dispatch_throughput.py --messages 2000 --campaign --database-url $(BENCH_POSTGRES_URL)

clean:
	rm -rf $(VENV) var build src/*.egg-info
