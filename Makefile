# feedguard — `make run` starts the services on embedded defaults; `make test`
# installs everything the tests need (system packages, both venvs) and runs them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_VERSION ?= 3.3.2
OPENLINEAGE_PROVIDER_VERSION ?= 2.20.3
PY := $(VENV)/bin/python
# TOOL=DEBIAN_PACKAGE: a tool missing from the PATH brings its package. Debian ships
# kubectl as kubernetes-client (1.20, kustomize v2.0.3 inside, which deploy/ is
# written for); a kubectl already installed (another package) is kept, not replaced.
# chromium: the incident pages' browser tests (Playwright drives it, headless).
SYSTEM_DEPS := redis-server=redis-server prometheus=prometheus promtool=prometheus \
	prometheus-alertmanager=prometheus-alertmanager amtool=prometheus-alertmanager \
	kubectl=kubernetes-client chromium=chromium
PY_PATHS := feedguard/__init__.py feedguard/core exporter responder tests bench rules/generator grafana/generate.py deploy/generate.py config/schema/generate.py

.PHONY: run demo test lint typecheck unit system-deps venv airflow-venv bench schemas clean lock

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all,test]'
	touch $@

venv: $(VENV)/.installed

# Airflow 3 lives in a venv of its own: its pins must not steer ours.  The
# OpenLineage provider makes it emit the events /api/v1/lineage takes.  The stamp
# is named after the package list, so an existing venv picks up a new package.
AIRFLOW_PACKAGES := apache-airflow==$(AIRFLOW_VERSION) apache-airflow-providers-openlineage==$(OPENLINEAGE_PROVIDER_VERSION)
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed-$(shell echo '$(AIRFLOW_PACKAGES)' | sha1sum | cut -c1-12)

$(AIRFLOW_STAMP):
	test -x $(AIRFLOW_VENV)/bin/pip || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet $(AIRFLOW_PACKAGES)
	touch $@

airflow-venv: $(AIRFLOW_STAMP)

system-deps:
	@missing=""; for pair in $(SYSTEM_DEPS); do \
	  command -v $${pair%%=*} >/dev/null || missing="$$missing $${pair#*=}"; done; \
	if [ -n "$$missing" ]; then \
	  packages=$$(printf '%s\n' $$missing | sort -u | tr '\n' ' '); \
	  echo "installing system packages: $$packages"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$packages; \
	fi

run: venv
	./scripts/run-local

# The whole loop on loopback, in dry run: see feedguard/demo/ and the README.
demo: venv system-deps
	$(PY) -m feedguard.demo

lint: venv
	$(VENV)/bin/ruff check $(PY_PATHS)
	$(VENV)/bin/ruff format --check $(PY_PATHS)

typecheck: venv
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict rules/generator/generate.py
	$(VENV)/bin/mypy --strict grafana/generate.py
	$(VENV)/bin/mypy --strict deploy/generate.py
	$(VENV)/bin/mypy --strict config/schema/generate.py

# The JSON Schemas of the config files, from the pydantic models (committed; a test checks them).
schemas: venv
	$(PY) config/schema/generate.py

unit: venv system-deps airflow-venv
	FEEDGUARD_AIRFLOW_VENV=$(AIRFLOW_VENV) $(VENV)/bin/pytest -q

test: system-deps venv airflow-venv lint typecheck unit

# requirements.lock pins every dependency of the image (Dockerfile installs from it).
# Refresh it after changing pyproject.toml's dependencies (tests/test_deploy.py
# fails while it lacks one), then rebuild the image.
lock:
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet pip-tools
	.venv-lock/bin/pip-compile --quiet --extra all --strip-extras --unsafe-package feedguard \
	  --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml

bench: venv system-deps
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) .venv-lock .mypy_cache .ruff_cache .pytest_cache var
