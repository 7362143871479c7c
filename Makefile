PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make run` installs the package and its dependencies only; `make test` adds the test extra
# (pytest, ruff, Flower with Ray, TensorBoard, Optuna...) on top, in the same venv.
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test test-integration test-slow docs lint bench clean

$(STAMP): pyproject.toml setup.py
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

run: $(STAMP)
	$(BIN)/python -m twinjax

test: $(TEST_STAMP)
	$(BIN)/ruff check twinjax experiments tests scripts examples
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15 -m "not slow and not integration"

# whole-app runs and compile-heavy checks (marked integration): CI runs them after `make test`
test-integration: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=25 -m "integration and not slow"

# long checks (marked slow: a wheel build, sweeps, Flower, the glucose loop); run by hand
test-slow: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=25 -m slow

# the documentation site into site/ (mkdocs-material, API pages by mkdocstrings); --strict: any
# warning (a broken docstring, a dead link) fails
docs: $(STAMP)
	$(BIN)/pip install --quiet -e '.[docs]'
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python scripts/bench_twins.py --n 64 --peer torch

clean:
	rm -rf $(VENV) outputs multirun site
