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

.PHONY: all setup demo test lint typecheck pytest docs bench derivations clean check-ui ui-deps

all: test

# The package is installed in setuptools' strict editable mode: build/__editable__.flatminima-*/
# holds flatminima/ with theory/, numerics/, validation/ linked in, file by file, as
# pyproject.toml's package-dir maps them; Python, pytest, mypy (mypy_path), mkdocstrings
# (paths) and IDEs all read that one tree. Editing a file needs nothing; adding, removing or
# renaming one needs new links, so the list of the package's files is part of the stamp.
EDITABLE := --config-settings editable_mode=strict
FILES    := $(VENV)/.flatminima-files
_ := $(shell mkdir -p $(VENV) && find flatminima theory numerics validation -type f \
	-not -path '*/__pycache__/*' -not -name '*.pyc' | LC_ALL=C sort > $(FILES).new && \
	{ cmp -s $(FILES).new $(FILES) || mv $(FILES).new $(FILES); }; rm -f $(FILES).new)

$(STAMP): pyproject.toml Makefile $(FILES)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[validation,dev,docs]' $(EDITABLE)
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

# What a user sees, in a real browser, offline: the demo report and the docs site open in
# headless Chromium (Debian's package); formulas must be rendered (no raw \frac in the visible
# text), figures must load, the covariance section must state its rule. pdflatex
# (texlive-latex-base) compiles `formula --format latex --steps` (tests/cli/test_latex.py).
# ui-deps installs both with apt when they are missing; without apt it says so and stops.
UI_SHOTS ?=

ui-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v pdflatex >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends chromium texlive-latex-base >/dev/null) \
	      || { echo "check-ui: apt-get could not install chromium/texlive-latex-base"; exit 1; }; \
	  else \
	    echo "check-ui: SKIPPED: chromium or pdflatex missing and no apt-get to install them"; \
	  fi; \
	fi

check-ui: $(STAMP) ui-deps
	@if ! command -v chromium >/dev/null 2>&1; then \
	  echo "check-ui: SKIPPED: no chromium (install Debian's chromium package)"; exit 0; fi; \
	$(BIN)/flatminima report --quick --out $(OUT) >$(OUT).log 2>&1 \
	  || { tail -20 $(OUT).log; exit 1; }; \
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site && \
	$(BIN)/python tests/ui/check_ui.py $(OUT)/report.html site $(if $(UI_SHOTS),--screenshots $(UI_SHOTS)) && \
	$(BIN)/pytest -q tests/cli/test_latex.py

# curvlinops (a peer of the probe's Lanczos) cannot be an extra: its dependency
# backpack-for-pytorch requires torchvision, and the only torchvision pip can get here either
# pins torch 2.14.1 (pip would download a CUDA torch) or, for torch 2.13.0, is a CUDA build
# that does not import with the CPU torch ("operator torchvision::nms does not exist").
# Nothing the peer runs imports torchvision, so it is installed without dependencies; the
# bench extra carries its other requirements (einops, opt_einsum, linear_operator).
CURVLINOPS := curvlinops-for-pytorch==3.0.1 backpack-for-pytorch==1.7.1 einconv==0.1.0 unfoldNd==0.2.3

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[validation,dev,docs,bench]' $(EDITABLE)
	$(BIN)/python -m pip install --quiet --no-deps $(CURVLINOPS)
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run.py

# The derivations shipped precomputed in the package (theory/_derivations.txt, tracked): derive
# them again after changing theory/*.py (a stale file is not used, and tests/theory/test_shipped.py
# fails until it is regenerated).
derivations: $(STAMP)
	$(BIN)/python -m flatminima.theory._shipped

clean:
	rm -rf $(VENV) site build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache $(OUT) $(OUT).log
