# The two commands of the quick start: `make demo` and `make test` (and `make demo-oscar`,
# `make test-oscar` for django-oscar shops).
# Each sets up what it needs (virtual environment, installs) on a fresh machine.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_STAMP := $(VENV)/.demo-stamp
OSCAR_DEMO_STAMP := $(VENV)/.oscar-demo-stamp

.PHONY: test test-oscar lint format demo demo-oscar bench clean docs fuzz

# The test dependencies (a superset of the demo's).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,sandbox]"
	touch $(STAMP) $(DEMO_STAMP) $(OSCAR_DEMO_STAMP)

# What the demo needs only: the package and the sandbox's NumPy.
$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[sandbox]"
	touch $(DEMO_STAMP)

# What the Oscar demo needs: the package with django-oscar and its search index, and
# the sandbox's NumPy.
$(OSCAR_DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[oscar-demo,sandbox]"
	touch $(OSCAR_DEMO_STAMP)

## Lint, then run the whole test suite.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

## Run the example shop with the sandbox provider and the worker (Ctrl-C stops all three).
demo: $(DEMO_STAMP)
	$(BIN)/python scripts/demo.py

## The same with the example django-oscar shop (example_oscar/).
demo-oscar: $(OSCAR_DEMO_STAMP)
	$(BIN)/python scripts/demo.py --shop oscar

## The django-oscar integration's tests, against Oscar itself (about a minute).
test-oscar: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider --ds tests.oscar.settings --no-migrations tests/oscar

## Every benchmark and the summary table (docs/performance.md); about 5 minutes.
bench: $(STAMP)
	$(BIN)/python -m bench

## Build the documentation site into site/ (warnings are errors).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## Fuzz the shopper API from its OpenAPI schema against the example shop (about 2 minutes).
fuzz: $(STAMP)
	$(BIN)/python scripts/fuzz_api.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
