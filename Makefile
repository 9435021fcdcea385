# License Portal: the front door. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

.PHONY: help install browser axe c-deps c-kit run run-stripe test lint format bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml clients/python/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 (or run make PYTHON=python3.x)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=23"
	$(BIN)/pip install --quiet -e '.[dev]' -e clients/python
	@touch $(STAMP)

install: $(STAMP) browser axe c-kit ## .venv with the project, the client kits and the dev tools; Chromium and axe-core for UI tests

browser: ## headless Chromium + chromedriver for the portal UI tests (Debian packages, no download at test time)
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Chromium for the portal UI tests: apt-get install chromium chromium-driver"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else \
	  echo "Chromium is missing, so the portal UI tests will be skipped. Install it with:"; \
	  echo "  sudo apt-get install chromium chromium-driver   (Debian/Ubuntu)"; \
	fi

# the accessibility checks of the portal tests run a current axe-core, served to the page from
# this disk (never a CDN); without npm they fall back to the older copy selenium-axe-python ships
AXE_VERSION := 4.14.1
AXE_JS := $(VENV)/axe/node_modules/axe-core/axe.min.js

axe: $(STAMP) ## axe-core $(AXE_VERSION) for the portal's accessibility tests (npm; skipped without it)
	@if [ -f $(AXE_JS) ] && grep -q "axe v$(AXE_VERSION)" $(AXE_JS); then :; \
	elif command -v npm >/dev/null; then \
	  npm install --silent --no-audit --no-fund --prefix $(VENV)/axe axe-core@$(AXE_VERSION) \
	    || echo "npm could not fetch axe-core: the accessibility tests use selenium-axe-python's copy"; \
	else \
	  echo "npm not found: the accessibility tests use the axe-core that selenium-axe-python ships"; \
	fi

# the C client kit (clients/c): built with the Debian toolchain into clients/c/build; without
# the toolchain (and not root to install it) the kit and its tests are skipped, never failed
C_PACKAGES := gcc g++ cmake pkg-config libcurl4-openssl-dev libssl-dev libcjson-dev
C_BUILD := clients/c/build
C_TOOLCHAIN_OK := command -v gcc && command -v g++ && command -v cmake && command -v pkg-config \
	&& pkg-config --exists libcurl openssl libcjson

c-deps: ## the C kit's compilers and libraries (Debian packages, installed only when missing)
	@if { $(C_TOOLCHAIN_OK); } >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing the C kit's toolchain: apt-get install $(C_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(C_PACKAGES); \
	else \
	  echo "The C kit's toolchain is missing, so the C kit and its tests will be skipped. Install it with:"; \
	  echo "  sudo apt-get install $(C_PACKAGES)   (Debian/Ubuntu)"; \
	fi

c-kit: c-deps ## build the C library, license-client-c and the C++ example into clients/c/build
	@if { $(C_TOOLCHAIN_OK); } >/dev/null 2>&1; then \
	  cmake -S clients/c -B $(C_BUILD) >/dev/null && cmake --build $(C_BUILD) --parallel 2; \
	else \
	  echo "Skipping the C kit: no C toolchain (see make c-deps)."; \
	fi

run: $(STAMP) ## run the whole suite on the embedded defaults, seeded with a demo company
	$(BIN)/python -m portalctl.devrun

run-stripe: $(STAMP) ## make run, with payments through a local Stripe server (Stripe.js card form)
	$(BIN)/python -m portalctl.devrun --stripe-local

# The client kit's tests run in a process of their own: the suite's tests run under eventlet's
# monkey patch (tests/conftest.py), and a product embedding the kit does not. Both parts run
# whatever the first gives; a part that PYTEST_ARGS narrows to nothing (exit 5) is no failure.
# The C kit's unit tests (CTest) run last, when it is built, whatever the others gave.
test: install ## run the whole test suite (needs RabbitMQ; PostgreSQL at TEST_DATABASE_URL)
	@status=0; for part in tests clients/python/tests; do \
	  $(BIN)/python -m pytest $$part $(PYTEST_ARGS); code=$$?; \
	  if [ $$code -ne 0 ] && [ $$code -ne 5 ]; then status=$$code; fi; \
	done; \
	if [ -f $(C_BUILD)/CTestTestfile.cmake ]; then \
	  ctest --test-dir $(C_BUILD) --output-on-failure || status=$$?; \
	elif [ -n "$$REQUIRE_C_KIT" ]; then \
	  echo "The C kit is not built, and REQUIRE_C_KIT is set: failing."; status=1; \
	else \
	  echo "The C kit is not built (no C toolchain): its unit tests are skipped."; \
	fi; exit $$status

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP) ## benchmarks (wrk, installed when missing): hot paths vs a bare nameko echo, leases, client, capacity
	$(BIN)/python -m bench

clean: ## remove the virtual environment, local state under var/ and the C kit's build
	rm -rf $(VENV) var $(C_BUILD)
