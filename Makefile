# rngtrace: every target creates the environment it needs. `make help` lists them.
PYTHON ?= python3
# where torch comes from: empty for the configured index; PyTorch's CPU-only wheels with
# make venv TORCH_INDEX=https://download.pytorch.org/whl/cpu (a plain Linux install is CUDA)
TORCH_INDEX ?=
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@echo "make: creating $(VENV) (once; a few minutes, mostly torch)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "make: installing torch 2.13.0 (the longest step)"
	$(PY) -m pip install --quiet -c constraints.txt $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) torch
	@echo "make: installing networkx, graphviz, numpy and the test and lint tools"
	$(PY) -m pip install --quiet -c constraints.txt torch networkx graphviz xxhash numpy pytest hypothesis ruff mypy import-linter
	@echo "make: installing transformers, peft, accelerate and pytorch-lightning (tests on real models and the integrations)"
	$(PY) -m pip install --quiet -c constraints.txt transformers peft accelerate pytorch-lightning
	@echo "make: installing playwright (drives Debian's chromium in the browser tests)"
	$(PY) -m pip install --quiet -c constraints.txt playwright
	@echo "make: installing rngtrace itself (editable)"
	$(PY) -m pip install --quiet -c constraints.txt --no-deps -e .
	touch $(STAMP)
	@echo "make: $(VENV) is ready"

venv: $(STAMP) ## create .venv with the pinned dependencies (torch 2.13.0 CPU)

demo: $(STAMP) ## run the seed story end to end (examples/seed_story.py)
	@echo "make: running the seed story (examples/seed_story.py, about a minute)"
	$(PY) examples/seed_story.py

figures: $(STAMP) ## redraw docs/story_diff.svg and the HTML report's screenshots (needs Graphviz, Chromium)
	$(PY) examples/make_figures.py docs

test: $(STAMP) ## run the test suite (6-7 minutes on a busy 2-core machine; see README)
	$(PY) -m pytest -q

test-fast: $(STAMP) ## the suite without the tests that start processes or take seconds (marked slow)
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP) ## time recording against plain, a bare dispatch mode and DebugMode (a few minutes); prints the table, writes out/bench/results.json (not tracked)
	mkdir -p out/bench
	$(PY) benchmarks/bench.py --json out/bench/results.json --no-update

bench-docs: $(STAMP) ## as bench, then writes benchmarks/results.json and the table into README.md and docs/benchmarks.md
	$(PY) benchmarks/bench.py

lint: $(STAMP) ## ruff, mypy and the import layers (import-linter)
	$(VENV)/bin/ruff check src tests examples benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean: ## remove the environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis src/*.egg-info

.PHONY: help venv demo test test-fast lint clean figures bench bench-docs
