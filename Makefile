# The two quick-start commands: `make demo` and `make test`. Each builds what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint clean bench bench-instructions bench-postgres

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

# Instructions per Telegram update under valgrind's callgrind, ours and the echo bot's (about 2 min;
# bench/instructions.py). Installs valgrind from Debian's packages if it is missing.
bench-instructions: $(VENV)/.dev
	$(BIN)/pip install --quiet -e '.[bench]'
	command -v valgrind >/dev/null || (apt-get update -qq && apt-get install -y -qq valgrind)
	$(BIN)/python -m bench.instructions

# The capacity steps on a throwaway PostgreSQL server with two replicas of the bot, requests spread
# over both as a balancer would (bench/postgres.py, about 8 min): bench/results/postgres.json.
bench-postgres: $(VENV)/.dev
	$(BIN)/pip install --quiet -e '.[bench]'
	scripts/with-postgres.sh $(BIN)/python -m bench.postgres

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
