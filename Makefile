# Two commands for a newcomer: `make demo` (install + main job) and `make test` (install + tests).
# The install pins torch==2.13.0 (a CPU build is on this machine's disk; any other version may pull
# a multi-GB CUDA wheel). Override with `make TORCH=torch==X.Y` if you bring your own.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Torch's default OpenMP busy-waiting slows a loaded 2-core machine 15-35x; passive waiting does not.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install demo test lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/learnlaw demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
