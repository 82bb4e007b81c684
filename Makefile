# City — developer commands. `make run` serves the app; `make test` runs the suite.

VENV    := .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

.DEFAULT_GOAL := install
.PHONY: venv install run test lint worker

venv install: $(STAMP)

$(PYTHON):
	python3 -m venv $(VENV)

# Reinstall only when pyproject.toml changes (order-only on the interpreter: its
# symlink mtime must not force a reinstall).
$(STAMP): pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install --upgrade pip
	$(PYTHON) -m pip install -e '.[dev]'
	touch $(STAMP)

# DEBUG on for a developer's machine; PORT picks the port (8000 by default).
run: export DEBUG ?= true
run: install
	$(PYTHON) manage.py migrate --noinput
	$(PYTHON) manage.py seed_demo
	exec $(VENV)/bin/uvicorn city.asgi:application --host 127.0.0.1 --port $${PORT:-8000} --timeout-graceful-shutdown 2 --lifespan off

test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports

# Celery worker with beat (timeouts, sandbox cleanup); needs REDIS_URL.
worker: install
	$(VENV)/bin/celery -A city worker -B -l info
