# The two quickstart commands: `make demo` and `make test`. Both install what they need first.
VENV ?= .venv
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-wheel lint bench

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/pocketvec demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

# The wheel in a new venv (pip resolves torch & co. from this machine's disk): many minutes
test-wheel: $(STAMP)
	POCKETVEC_FRESH_VENV=1 $(VENV)/bin/python -m pytest -q tests/runtime/test_wheel_fresh_venv.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests experiments

bench: $(STAMP)
	$(VENV)/bin/pocketvec bench
