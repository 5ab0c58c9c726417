# Two entry points for a fresh machine: `make demo` and `make test`.
# torch is installed first, pinned, so pip never resolves the project's `torch>=2.4` to a
# multi-GB CUDA build here; elsewhere, override: `make test TORCH=torch==2.14.1`.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint schema install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e '.[runtime,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/demo.sh

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q --area-progress

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check compiler runtime tests benchmarks

schema: $(STAMP)
	$(BIN)/mlc schema -o schemas/mlproject.schema.json

clean:
	rm -rf $(VENV) .venv-checkov .mlc .pytest_cache .ruff_cache
