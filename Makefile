# computectl — `make demo` and `make test` work on a fresh machine; everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST := $(BIN)/pytest -p no:cacheprovider

.PHONY: demo test venv sysdeps lint typecheck unit integration e2e bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,gpu]'
	@rm -f $(VENV)/.installed-*; touch $@

demo: $(STAMP)
	$(BIN)/computectl demo

# System packages the integration and browser tests drive for real.
sysdeps:
	testenv/ensure-packages prometheus chromium postgresql fonts-dejavu-core

lint: $(STAMP)
	$(BIN)/ruff check compute health scheduler tests benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(PYTEST) tests/unit -q

integration: $(STAMP) sysdeps
	$(PYTEST) tests/integration -q

e2e: $(STAMP) sysdeps
	$(PYTEST) tests/e2e -q

test: $(STAMP) sysdeps lint typecheck
	$(PYTEST) tests -q

bench: $(STAMP)
	$(BIN)/python benchmarks/sweep_bench.py --nodes 10000 --write benchmarks/RESULTS.md

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
