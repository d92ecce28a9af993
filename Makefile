# vidgate: `make run` serves the gateway on the embedded default (SQLite + local disk + sandbox);
# `make test` runs the whole suite (SQLite; and PostgreSQL too when VIDGATE_TEST_DATABASE_URL is set).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DEV_KEY ?= sk-vg-dev-local-key

.PHONY: run test test-sqlite test-postgres lint format bench clean

# two stamps: `make run` installs the runtime only; the test, lint and bench targets add the dev extras
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed

$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

$(DEV): $(RUNTIME)
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

run: $(RUNTIME)
	@echo "development API key: $${VIDGATE_BOOTSTRAP_API_KEY:-$(DEV_KEY)}"
	VIDGATE_BOOTSTRAP_API_KEY=$${VIDGATE_BOOTSTRAP_API_KEY:-$(DEV_KEY)} $(BIN)/vidgate serve --host $(HOST) --port $(PORT)

tests/node/node_modules: tests/node/package.json
	-cd tests/node && npm ci --no-audit --no-fund --silent

test: $(DEV) tests/node/node_modules
	$(BIN)/python -m pytest -q

test-sqlite: $(DEV)
	VIDGATE_TEST_DATABASE_URL= $(BIN)/python -m pytest -q

test-postgres: $(DEV)
	VIDGATE_TEST_DATABASE_URL=$${VIDGATE_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test} $(BIN)/python -m pytest -q

lint: $(DEV)
	$(BIN)/ruff check app tests
	$(BIN)/ruff format --check app tests
	$(BIN)/mypy

format: $(DEV)
	$(BIN)/ruff format app tests
	$(BIN)/ruff check --fix app tests

bench: $(DEV)
	@for f in bench/p[0-9]*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done
	$(BIN)/python bench/p1_status.py --db postgres
	$(BIN)/python bench/report.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache data
