# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run lint test test-tansu test-apache stack-down clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/.installed

## Install, start the embedded stack (Tansu + valkey on loopback), run one worker in the foreground.
run: install
	$(BIN)/profitstream stack up
	$(BIN)/profitstream worker

stack-down: install
	$(BIN)/profitstream stack down

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Everything CI runs: lint, the whole suite on Tansu, the broker-facing tests on Apache Kafka.
test: lint test-tansu test-apache

test-tansu: install
	PROFITSTREAM_TEST_KAFKA=tansu $(BIN)/python -m pytest

test-apache: install
	PROFITSTREAM_TEST_KAFKA=apache $(BIN)/python -m pytest -m kafka

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
