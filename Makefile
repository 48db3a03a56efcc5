# The two commands a newcomer needs: `make quickstart` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.paretune-installed

.PHONY: setup quickstart test lint bench clean

# paretune itself with -qq: errors only (setuptools notes every flat-layout editable install)
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install -qq -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

quickstart: $(STAMP)
	rm -rf paretune-runs/quickstart
	$(BIN)/paretune run examples/quickstart.yaml

test: $(STAMP)
	bash .ci/system-deps chromium postgresql iproute2
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check study search_spaces trials analysis tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
