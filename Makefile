# FlowForge: `make demo` runs the main job on the embedded default, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

.PHONY: install demo test serve up down lint bench lock clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install FlowForge with pinned dependencies

demo: $(STAMP) ## run the end-to-end demo on the embedded default
	$(BIN)/flowforge demo

test: $(STAMP) ## run the test suite (PostgreSQL and Redis on 127.0.0.1 are used for real)
	$(BIN)/pytest

serve: $(STAMP) ## every service's API in one process on 127.0.0.1:8000
	$(BIN)/flowforge serve

up: ## the stack in docker compose (PostgreSQL, Redis, MinIO, services, gateway on :8080)
	$(COMPOSE) up --build -d

down:
	$(COMPOSE) down

lint: $(STAMP) ## ruff, and the import contracts between services in .importlinter
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

bench: $(STAMP) ## benchmarks under bench/, printed as ratios against a raw baseline
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
	rm -rf $(VENV) .flowforge .pytest_cache .ruff_cache
