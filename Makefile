# feedguard — `make run` starts the services on embedded defaults; `make test`
# installs everything the tests need (system packages, both venvs) and runs them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_VERSION ?= 3.3.2
PY := $(VENV)/bin/python
SYSTEM_TOOLS := redis-server prometheus promtool prometheus-alertmanager amtool
SYSTEM_PACKAGES := redis-server prometheus prometheus-alertmanager
PY_PATHS := feedguard/__init__.py feedguard/core exporter responder tests bench rules/generator grafana/generate.py

.PHONY: run test lint typecheck unit system-deps venv airflow-venv bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all,test]'
	touch $@

venv: $(VENV)/.installed

# Airflow 3 lives in a venv of its own: its pins must not steer ours.
$(AIRFLOW_VENV)/.installed:
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet apache-airflow==$(AIRFLOW_VERSION)
	touch $@

airflow-venv: $(AIRFLOW_VENV)/.installed

system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages (missing:$$missing)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); \
	fi

run: venv
	./scripts/run-local

lint: venv
	$(VENV)/bin/ruff check $(PY_PATHS)
	$(VENV)/bin/ruff format --check $(PY_PATHS)

typecheck: venv
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict rules/generator/generate.py
	$(VENV)/bin/mypy --strict grafana/generate.py

unit: venv system-deps airflow-venv
	FEEDGUARD_AIRFLOW_VENV=$(AIRFLOW_VENV) $(VENV)/bin/pytest -q

test: system-deps venv airflow-venv lint typecheck unit

bench: venv system-deps
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) .mypy_cache .ruff_cache .pytest_cache var
