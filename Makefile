# cdp — run `make help` for the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: help install lint browser test test-chaos test-unit test-integration demo stop bench schemas clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP) ## create .venv and install cdp with its pinned dependencies

lint: install ## ruff + mypy (strict on cdp/ and streams/)
	$(BIN)/ruff check cdp streams tests bench
	$(BIN)/ruff format --check cdp streams tests bench
	$(BIN)/mypy

browser: ## Chromium for the report test (Debian package; installed when run as root)
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); } || \
	  { echo "error: the report test needs Chromium: install Debian's 'chromium' package"; exit 1; }

test: lint browser ## lint, then the whole suite against a private real Kafka + PostgreSQL stack
	$(BIN)/python -m pytest -q

test-chaos: install ## the chaos suite at full size (~200k events, 60 SIGKILLs over most of the drain, full redelivery)
	CDP_CHAOS_CUSTOMERS=6000 CDP_CHAOS_KILLS=60 CDP_CHAOS_OUTAGE_S=60 $(BIN)/python -m pytest -q -s tests/chaos

test-unit: install ## pure tests only (no services)
	$(BIN)/python -m pytest -q tests/unit

schemas: install ## regenerate schemas/*.schema.json from the pydantic models
	$(BIN)/cdp schemas generate

demo: install ## the whole platform end to end on the local stack
	$(BIN)/cdp demo

stop: install ## stop the local stack and any demo workers
	$(BIN)/cdp stack down

bench: install ## benchmarks (not part of `make test`); writes bench/results/<date>.json
	$(BIN)/python bench/run.py

clean: ## remove the venv and local state
	rm -rf $(VENV) .cdp .mypy_cache .ruff_cache .pytest_cache
