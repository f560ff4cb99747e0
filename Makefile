# Set-up and checks for sdebayes. The two commands a new machine needs are `make demo` and
# `make test`; both create the virtual environment in .venv first.

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The first interpreter found that is Python >= 3.12 (PyMC 6 and ArviZ 1 need it).
# Override with `make PYTHON=/path/to/python3.12 ...`.
PYTHON ?= $(shell for p in python3.12 python3 python3.13 python; do \
	  command -v $$p >/dev/null 2>&1 && \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && \
	  { echo $$p; break; }; done)

.PHONY: install demo test test-fast lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ] || ! $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
	  echo "error: sdebayes needs Python >= 3.12 (PyMC 6, ArviZ 1); none found on PATH (looked for python3.12, python3, python3.13, python; PYTHON=$(PYTHON))." >&2; \
	  echo "       Install one (e.g. 'pyenv install 3.12') or run 'make PYTHON=/path/to/python3.12 ...'." >&2; \
	  exit 1; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: install
	$(BIN)/sdebayes sample --strategy AI

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m 'not slow'

lint: install
	$(BIN)/ruff check sdebayes tests benchmarks
	$(BIN)/ruff format --check sdebayes tests benchmarks
	$(BIN)/mypy sdebayes

clean:
	rm -rf $(VENV) build *.egg-info
