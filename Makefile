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

.PHONY: run test admin bench lint typecheck install install-test debian-packages clean

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

## make run: the daemon on inbox/ -> outbox/ and the publication service (OCSP, CRL, CA
## certificates on http://127.0.0.1:8080), in the foreground (creates the CA on first use)
run: install
	$(BIN)/certdesk $(HOME_ARG) run --init-if-missing

## make test: lint, type-check and the whole test suite
test: install-test debian-packages
	$(BIN)/ruff check lib tests benchmarks
	$(BIN)/mypy lib/certdesk
	$(BIN)/python -m pytest -n auto

## make admin: the notebooks as a web app with Voila, token-protected, on 127.0.0.1
admin: install-test
	$(BIN)/certdesk $(HOME_ARG) admin

## make bench: throughput and scale benchmarks; writes docs/benchmarks.md
bench: install-test debian-packages
	$(BIN)/python -m benchmarks

## Debian's packages the tests and benchmarks use, installed when missing with one
## apt-get update: chromium (browser tests), wrk and nginx-light (the OCSP benchmark),
## softhsm2 (a throw-away PKCS#11 token for the HSM tests and benchmark) and opensc
## (pkcs11-tool, to make keys with the token's own tools, and pkcs11-spy)
debian-packages:
	@missing=""; \
	[ -x "$(CHROMIUM)" ] || missing="$$missing chromium"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	command -v nginx >/dev/null || missing="$$missing nginx-light"; \
	command -v softhsm2-util >/dev/null || missing="$$missing softhsm2"; \
	command -v pkcs11-tool >/dev/null || missing="$$missing opensc"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing:$$missing: run 'sudo apt-get install$$missing' (their tests will be skipped)"; fi; \
	fi

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
