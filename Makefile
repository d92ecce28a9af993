# vidgate: `make run` serves the gateway on the embedded default (SQLite + local disk + sandbox);
# `make test` runs the whole suite (SQLite; and PostgreSQL too when VIDGATE_TEST_DATABASE_URL is set).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DEV_KEY ?= sk-vg-dev-local-key

.PHONY: run test test-sqlite test-postgres lint format bench clean

$(BIN)/vidgate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

run: $(BIN)/vidgate
	@echo "development API key: $${VIDGATE_BOOTSTRAP_API_KEY:-$(DEV_KEY)}"
	VIDGATE_BOOTSTRAP_API_KEY=$${VIDGATE_BOOTSTRAP_API_KEY:-$(DEV_KEY)} $(BIN)/vidgate serve --host $(HOST) --port $(PORT)

tests/node/node_modules: tests/node/package.json
	-cd tests/node && npm ci --no-audit --no-fund --silent

test: $(BIN)/vidgate tests/node/node_modules
	$(BIN)/python -m pytest -q

test-sqlite: $(BIN)/vidgate
	VIDGATE_TEST_DATABASE_URL= $(BIN)/python -m pytest -q

test-postgres: $(BIN)/vidgate
	VIDGATE_TEST_DATABASE_URL=$${VIDGATE_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test} $(BIN)/python -m pytest -q

lint: $(BIN)/vidgate
	$(BIN)/ruff check app tests migrations
	$(BIN)/ruff format --check app tests migrations

format: $(BIN)/vidgate
	$(BIN)/ruff format app tests migrations
	$(BIN)/ruff check --fix app tests migrations

bench: $(BIN)/vidgate
	@for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache data
