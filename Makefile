PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make run` installs the package and its dependencies only; `make test` adds the test extra
# (pytest, ruff, Flower with Ray, TensorBoard, Optuna...) on top, in the same venv.
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint bench clean

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
	$(BIN)/ruff check twinjax experiments tests scripts
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=25

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python scripts/bench_twins.py --n 64 --peer torch

clean:
	rm -rf $(VENV) outputs multirun
