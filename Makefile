# `make run`: the proxy on the embedded default (no Redis, no API key) with simulated models.
# `make test`: lint, type-check, and the whole test suite (real redis-server, real servers).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,plot]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/model-manager serve --config config.yaml

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

test: lint
	scripts/ensure-test-tools.sh
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
