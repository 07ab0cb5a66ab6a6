# certdesk: the two set-up commands (make run, make test), plus admin and bench.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The home: HOME_DIR=..., else $CERTDESK_HOME, else the current folder (the CLI's own rule).
HOME_DIR ?=
HOME_ARG = $(if $(HOME_DIR),--home "$(HOME_DIR)")
# Chromium from Debian for the browser tests; never a downloaded browser.
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test admin bench lint typecheck install install-test chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## make run: the daemon on inbox/ -> outbox/, in the foreground (creates the CA on first use)
run: install
	$(BIN)/certdesk $(HOME_ARG) watch --init-if-missing

## make test: lint, type-check and the whole test suite
test: install-test chromium
	$(BIN)/ruff check lib tests benchmarks
	$(BIN)/mypy lib/certdesk
	$(BIN)/python -m pytest

## make admin: the notebooks as a web app with Voila, token-protected, on 127.0.0.1
admin: install-test
	$(BIN)/certdesk $(HOME_ARG) admin

## make bench: throughput and scale benchmarks; writes docs/benchmarks.md
bench: install-test
	$(BIN)/python -m benchmarks

## Debian's chromium for the browser tests (installed only when missing)
chromium:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium missing: run 'sudo apt-get install chromium' (browser tests will be skipped)"; fi; \
	fi

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
