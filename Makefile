# computectl — `make demo` and `make test` work on a fresh machine; everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HASH   := $(shell sha1sum pyproject.toml | cut -c1-12)
RUNTIME_STAMP := $(VENV)/.runtime-$(HASH)
DEV_STAMP     := $(VENV)/.dev-$(HASH)
PYTEST := $(BIN)/pytest -p no:cacheprovider

.PHONY: demo test venv sysdeps kueue lint typecheck unit integration e2e bench clean

# The demo needs only the runtime dependencies: a fresh machine is serving sooner.
$(RUNTIME_STAMP): pyproject.toml
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --disable-pip-version-check -e .
	@rm -f $(VENV)/.runtime-*; touch $@

$(DEV_STAMP): $(RUNTIME_STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,gpu,burnin,provision]'
	@rm -f $(VENV)/.dev-*; touch $@

venv: $(DEV_STAMP)

demo: $(RUNTIME_STAMP)
	$(BIN)/computectl demo

# System packages the integration and browser tests drive for real.
sysdeps:
	testenv/ensure-packages prometheus prometheus-node-exporter chromium postgresql fonts-dejavu-core

# Kueue for the per-pool tenant quota tests: built from the Go module proxy and cached by
# version under ~/.cache/computectl/kueue (a no-op once cached; the first build takes
# minutes). The Kubernetes binaries and dex are built the same way by their testenv
# scripts when the tests first start them.
kueue:
	testenv/kueue build

lint: $(DEV_STAMP)
	$(BIN)/ruff check compute health scheduler tests benchmarks dashboards
	$(BIN)/ruff format --check compute health scheduler tests benchmarks dashboards
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

unit: $(DEV_STAMP)
	$(PYTEST) tests/unit -q

integration: $(DEV_STAMP) sysdeps kueue
	$(PYTEST) tests/integration -q

e2e: $(DEV_STAMP) sysdeps
	$(PYTEST) tests/e2e -q

test: $(DEV_STAMP) sysdeps kueue lint typecheck
	$(PYTEST) tests -q

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/sweep_bench.py --nodes 10000 --write benchmarks/RESULTS.md

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
