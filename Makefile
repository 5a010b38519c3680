# make test   - create .venv, install system tools (as root) and Python deps, lint (ruff, mypy), run the test suite
# make test-fast - the unit layer only (no real servers, no tools started): well under a minute
# make demo   - the whole stack natively: exporter + example app under uwsgi (5 workers) + Prometheus
# make bench  - benchmarks; writes docs/benchmarks.md
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv system-deps test test-fast lint format bench demo clean

$(STAMP): pyproject.toml
	@scripts/ensure-venv.sh "$(PYTHON)" "$(VENV)"
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

system-deps:
	@scripts/system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy statsd_instrument

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(STAMP) system-deps lint
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -m "not e2e" $(PYTEST_ARGS)

bench: $(STAMP) system-deps
	$(BIN)/python -m benchmarks

demo: $(STAMP)
	@scripts/system-deps.sh --optional
	$(BIN)/statsd-instrument demo $(DEMO_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
