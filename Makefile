# pychat_db: every command a developer or CI runs. `make help` lists them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements/dev.txt
# The lock tool and how it is called: one universal resolution (every Python >= 3.11, every platform),
# every file's SHA-256. `make lock` is the only thing that changes what an install gets.
UV := $(VENV)/bin/uv
COMPILE := $(UV) pip compile --quiet --universal --generate-hashes --python-version 3.11 --custom-compile-command "make lock"

.PHONY: help install demo test lint typecheck codegen lock wheel fuzz reliability bench clean

help:
	@echo "make install   create .venv with the project and its dev tools (idempotent)"
	@echo "make demo      install, then import examples/export into chat.db, verify it, print the summary"
	@echo "make test      install, then sqlfluff, ruff, mypy --strict, codegen --check and pytest"
	@echo "make lock      refresh requirements/*.txt to the newest releases pyproject.toml allows, reinstall, make test"
	@echo "make wheel     build dist/pychat_db-*.whl (the wheel pip installs; pychat-db command)"
	@echo "make codegen   regenerate pychat_db/generated/, schema snapshots and docs/schema.md"
	@echo "make fuzz      the long fuzz runs of the importer (export dirs and .isar files)"
	@echo "make reliability  every fault point, power-loss and concurrency trial (docs/reliability.md)"
	@echo "make bench     every benchmark (long: generates about 3 GB under /tmp)"

install: $(STAMP)

# Everything comes from the lock, hash-checked; the project itself is installed editable without build
# isolation, so its build backend (hatchling) is the locked one too. Nothing is resolved here.
$(STAMP): $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --editable .
	$(PY) -m pip check
	touch $(STAMP)

# On purpose only: resolve again (newest allowed releases), reinstall from the new lock, run every check.
lock: install
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements/uv.txt
	$(COMPILE) --upgrade pyproject.toml requirements/build.in --extra dev -o requirements/dev.txt
	$(COMPILE) pyproject.toml -c requirements/dev.txt -o requirements/runtime.txt
	$(COMPILE) --upgrade requirements/uv.in -o requirements/uv.txt
	rm -f $(STAMP)
	$(MAKE) test

wheel: install
	rm -rf dist
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist .

demo: install
	$(VENV)/bin/pychat-db import examples/export --db chat.db --force
	$(VENV)/bin/pychat-db verify examples/export --db chat.db --samples 50

lint: install
	$(VENV)/bin/sqlfluff lint schema queries
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy --strict

codegen: install
	$(PY) -m codegen

test: lint typecheck
	$(PY) -m codegen --check
	$(PY) -m pytest -q -m 'not slow'

fuzz: install
	PYCHAT_FUZZ_EXAMPLES=3000 $(PY) -m pytest -q -s tests/test_fuzz_import.py tests/test_fuzz_isar.py

reliability: install
	$(PY) -m pytest -q -s -m slow tests/test_faults_sql.py tests/test_faults_repos.py tests/test_faults_import.py \
		tests/test_powerloss_sql.py tests/test_powerloss_repos.py tests/test_powerloss_import.py tests/test_concurrency.py

bench: install
	$(PY) -m tools.bench memory
	$(PY) -m tools.bench repos
	$(PY) -m tools.bench import
	$(PY) -m tools.bench isar

clean:
	rm -rf $(VENV) dist .pytest_cache .mypy_cache .ruff_cache .hypothesis chat.db chat.db-wal chat.db-shm
