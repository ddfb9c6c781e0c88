# Every target sets up what it needs: a fresh machine needs only python3 and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.DEFAULT_GOAL := help

.PHONY: help
help: ## show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/.installed: setup.cfg setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,demo]'
	touch $@

.PHONY: install
install: $(BIN)/.installed ## create .venv and install warehouse with its test and demo extras

.PHONY: test
test: $(BIN)/.installed ## run the whole suite on a real PostgreSQL (embedded unless DATABASE_URL is set)
	PYTHONDEVMODE=1 $(BIN)/python -W error::ResourceWarning -m pytest $(PYTEST_ARGS)

STRESS_REPORT ?= benchmarks/results/stress.json
STRESS_ENV := WAREHOUSE_STRESS_THREADS=16 WAREHOUSE_STRESS_OPERATIONS=2000 WAREHOUSE_STRESS_SECONDS=600

# pytest's exit status 5 (no test collected) means no test is marked stress: not a failure.
.PHONY: stress
stress: $(BIN)/.installed ## the load test at full size (figures to benchmarks/results/stress.json), then the tests marked stress
	$(STRESS_ENV) WAREHOUSE_STRESS_REPORT=$(STRESS_REPORT) PYTHONDEVMODE=1 \
		$(BIN)/python -W error::ResourceWarning -m pytest -p no:randomly -s tests/test_stress.py
	$(STRESS_ENV) PYTHONDEVMODE=1 $(BIN)/python -W error::ResourceWarning -m pytest -p no:randomly \
		-m stress --ignore=tests/test_stress.py tests || [ $$? -eq 5 ]

.PHONY: lint
lint: $(BIN)/.installed ## ruff
	$(BIN)/ruff check warehouse tests testproject benchmarks
	$(BIN)/ruff format --check warehouse tests testproject benchmarks

.PHONY: demo
demo: $(BIN)/.installed ## run the test project on http://127.0.0.1:8000 with an embedded PostgreSQL
	$(BIN)/python testproject/manage.py migrate --no-input
	$(BIN)/python testproject/manage.py demo_user --url http://$(HOST):$(PORT)/
	$(BIN)/python testproject/manage.py runserver $(HOST):$(PORT)

.PHONY: matrix
matrix: $(BIN)/.installed ## run the suite on Django 4.2 / Python 3.10 and Django 6.1 / Python 3.13 (nox)
	$(BIN)/python -m pip install --quiet nox
	$(BIN)/nox $(NOX_ARGS)

.PHONY: bench
bench: $(BIN)/.installed ## measure memory and speed of the storage, uploads, the reading connection, serving and the lifecycle
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/storage.py
	$(BIN)/python benchmarks/uploads.py
	$(BIN)/python benchmarks/reading_connection.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/lifecycle.py

.PHONY: clean
clean: ## remove the virtualenv and the embedded databases
	rm -rf $(VENV) .nox .pgdata
