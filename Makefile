# Each target creates .venv when missing and installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo test lint bench clean prestashop-zip

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/relance migrate
	$(BIN)/relance serve --host 127.0.0.1 --port 8000

demo: $(STAMP)
	$(BIN)/relance demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)
	@if command -v php >/dev/null 2>&1; then prestashop/tests/run; \
	elif [ "$$RELANCE_TEST_REQUIRE_PHP" = 1 ]; then echo "php is missing (RELANCE_TEST_REQUIRE_PHP=1)" >&2; exit 1; \
	else echo "php not installed: prestashop/tests/run skipped"; fi

# The installable module: dist/relance.zip, whose root folder is relance/.
prestashop-zip:
	rm -f dist/relance.zip
	mkdir -p dist
	cd prestashop && $(PY) -m zipfile -c ../dist/relance.zip relance
	@echo dist/relance.zip

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) dist relance.db relance.db-wal relance.db-shm outbox .pytest_cache .mypy_cache
