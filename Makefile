# The two quick-start commands: `make demo` and `make test`. Each builds what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint clean bench

demo: $(VENV)/.runtime
	$(BIN)/recargabot demo

# Lint (ruff and mypy stay clean), then the suite on SQLite, then again on a throwaway
# PostgreSQL server (tests/unit is the pure core: no database, so it runs once).
test: lint
	$(BIN)/pytest
	scripts/with-postgres.sh $(BIN)/pytest --ignore=tests/unit

# ruff, then mypy (strict on conversations/ and adapters/; pyproject.toml [tool.mypy]).
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	touch $@

$(VENV)/.runtime: pyproject.toml $(VENV)/.created
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.created
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.runtime

# Benchmarks on loopback (bench/run.py): prints a table, writes bench/results/.
bench: $(VENV)/.dev
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
