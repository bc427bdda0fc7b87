# flatminima: `make demo` and `make test` set everything up on a fresh machine.
#
# torch must be installed first, pinned: `pip install torch==2.13.0` takes the CPU wheel that
# lies on disk; letting pip resolve torch through the extras first would download a multi-GB
# CUDA build. pyproject.toml keeps a range that 2.13.0 satisfies.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.flatminima-installed
TORCH  := torch==2.13.0
OUT    ?= demo-out

BENCH_STAMP := $(VENV)/.flatminima-bench-installed

.PHONY: all setup demo test lint typecheck pytest docs bench clean

all: test

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[validation,dev,docs]'
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/flatminima report --quick --out $(OUT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy -p flatminima

pytest: $(STAMP)
	$(BIN)/pytest

# The docs site: strict, so a broken link, a missing API name or a failing generated page
# fails make test. Generated pages (derivations, benchmark table) come from docs/hooks.py.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

test: lint typecheck docs pytest

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[validation,dev,docs,bench]'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) site build *.egg-info .pytest_cache .mypy_cache .ruff_cache $(OUT)
