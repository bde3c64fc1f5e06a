# FlowForge: `make demo` runs the main job on the embedded default, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

WEB := services/web
# The web UI (services/web): npm ci from the lockfile, vite build into dist/ when a source changed.
WEB_DEPS := $(WEB)/node_modules/.package-lock.json
WEB_BUNDLE := $(WEB)/dist/index.html
WEB_SOURCES := $(shell find $(WEB)/src -type f 2>/dev/null) $(WEB)/index.html $(WEB)/vite.config.ts \
	$(WEB)/tailwind.config.js $(WEB)/postcss.config.js $(WEB)/tsconfig.json $(WEB)/package-lock.json

.PHONY: install demo test serve up down lint bench lock clean web web-if-node web-schema test-web lint-web

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install FlowForge with pinned dependencies

$(WEB_DEPS): $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund
	touch $(WEB_DEPS)

$(WEB_BUNDLE): $(WEB_DEPS) $(WEB_SOURCES)
	cd $(WEB) && npx vite build

web: $(WEB_BUNDLE) ## build the web UI bundle (services/web/dist) when missing or stale

# make demo / make serve build the UI when Node and npm are there; without them the API runs
# and `/` says how to build the UI.
web-if-node:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory web; \
	else echo "npm not found: the web UI is not built (Node 20 + npm needed); the API runs without it"; fi

web-schema: $(STAMP) $(WEB_DEPS) ## regenerate services/web/src/api/schema.d.ts from the API's OpenAPI
	cd $(WEB) && node scripts/gen-schema.mjs

demo: $(STAMP) web-if-node ## run the end-to-end demo on the embedded default
	$(BIN)/flowforge demo

test: $(STAMP) ## run the test suite (PostgreSQL and Redis on 127.0.0.1 are used for real), then the web UI's
	$(BIN)/pytest
	$(MAKE) --no-print-directory test-web

test-web: $(STAMP) $(WEB_BUNDLE) ## the web UI: vitest unit tests, Playwright E2E on Debian's Chromium against a real flowforge serve
	cd $(WEB) && npx vitest run
	cd $(WEB) && npx playwright test

serve: $(STAMP) web-if-node ## every service's API and the web UI in one process on 127.0.0.1:8000
	$(BIN)/flowforge serve

up: ## the stack in docker compose (PostgreSQL, Redis, MinIO, services, gateway on :8080)
	$(COMPOSE) up --build -d

down:
	$(COMPOSE) down

lint: $(STAMP) ## ruff, and the import contracts between services in .importlinter
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(MAKE) --no-print-directory lint-web

lint-web: $(STAMP) $(WEB_DEPS) ## tsc --noEmit, eslint, and the generated API types match the API
	cd $(WEB) && npx tsc --noEmit -p tsconfig.json
	cd $(WEB) && npx eslint src e2e
	cd $(WEB) && node scripts/gen-schema.mjs --check

bench: $(STAMP) ## benchmarks under bench/, printed as ratios against a raw baseline, then a SUMMARY of the targets
	$(BIN)/python -m bench

lock: ## re-resolve and pin every dependency into constraints.txt
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -e '.[dev]'
	{ echo "# Pinned versions of every dependency (runtime and dev): pip install -c constraints.txt -e '.[dev]'"; \
	  echo "# Regenerate after changing pyproject.toml: make lock"; \
	  .lock-venv/bin/pip freeze --exclude-editable; } > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .flowforge .pytest_cache .ruff_cache $(WEB)/node_modules $(WEB)/dist $(WEB)/test-results
