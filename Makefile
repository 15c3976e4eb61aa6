# The two commands of the README: `make run` (the main job) and `make test` (the suite).
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
DP    := $(VENV)/bin/dataplatform
PYTHON ?= python3

.PHONY: run test unit install jars postgres browser bench clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	@touch $@

install: $(VENV)/.installed  ## create .venv and install the project with its test extras

jars: install  ## resolve the jars of Kafka, the Iceberg REST catalog and S3Proxy from Maven Central (cached)
	$(DP) kafka jars
	$(PY) -m dataplatform.lakehouse.jars

postgres:  ## install (Debian) and start PostgreSQL if no server answers
	@./scripts/ensure-postgres.sh >/dev/null

browser:  ## install Debian's headless Chromium for the browser tests
	@./scripts/ensure-chromium.sh

run: jars  ## the main job: bring the platform up end to end (Ctrl-C stops it)
	$(DP) run

test: jars postgres browser  ## the whole suite: unit and integration tests on a real broker and PostgreSQL
	TEST_DATABASE_URL=$$(./scripts/ensure-postgres.sh) $(VENV)/bin/pytest

unit: install  ## unit tests only (no broker, no database)
	$(VENV)/bin/pytest -m "not integration"

bench: jars postgres  ## run the benchmarks and write bench/results/*.json
	TEST_DATABASE_URL=$$(./scripts/ensure-postgres.sh) $(PY) -m bench

clean:  ## remove the virtual environment and local state
	rm -rf $(VENV) .dataplatform
