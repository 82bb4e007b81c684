# City — developer commands. `make run` serves the app on one machine; `make services` runs
# production's processes; `make test` runs the suite.

VENV    := .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
# honcho runs the Procfile's commands by name (uvicorn, celery, python): the venv's come first.
# Unbuffered, so that what each process prints shows through honcho's pipe as it is printed.
RUN_ENV := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PYTHONUNBUFFERED=1
# Settings come from the environment alone: honcho would also read a .env file.
HONCHO  := $(VENV)/bin/honcho --env /dev/null

.DEFAULT_GOAL := install
.PHONY: venv install run services production-env test lint

venv install: $(STAMP)

$(PYTHON):
	python3 -m venv $(VENV)

# Reinstall only when pyproject.toml changes (order-only on the interpreter: its
# symlink mtime must not force a reinstall).
$(STAMP): pyproject.toml sdk/python/pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install --upgrade pip
	$(PYTHON) -m pip install -e '.[dev]' -e sdk/python
	touch $(STAMP)

# One machine on the embedded defaults: the server, the sweeps (run_sweeps) and the demo agent
# beside it, from Procfile.dev; Ctrl-C stops them all. DEBUG on for a developer's machine; PORT picks the port.
run: export DEBUG ?= true
# The demo agent (Procfile.dev's agent) finds the server here: honcho gives each process a port.
run: export CITY_BASE_URL ?= http://127.0.0.1:$(or $(PORT),8000)
run: install
	$(PYTHON) manage.py migrate --noinput
	$(PYTHON) manage.py seed_demo
	exec env $(RUN_ENV) $(HONCHO) start --procfile Procfile.dev --port $${PORT:-8000}

# Production's processes (web, worker, beat) from the Procfile, on PostgreSQL and Redis.
services: production-env install
	$(PYTHON) manage.py migrate --noinput
	exec env $(RUN_ENV) $(HONCHO) start --procfile Procfile --port $${PORT:-8000}

# What production cannot run without, said before anything starts (settings would refuse too,
# but once per process and deep in a traceback).
production-env:
	@missing=""; \
	for name in DATABASE_URL REDIS_URL SECRET_KEY; do \
	    [ -n "$$(printenv $$name)" ] || missing="$$missing $$name"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "make services runs City for production and needs these set:$$missing" >&2; \
	    echo "  DATABASE_URL  PostgreSQL, e.g. postgres://city@127.0.0.1:5432/city" >&2; \
	    echo "  REDIS_URL     the Celery broker and cache, e.g. redis://127.0.0.1:6379/0" >&2; \
	    echo "  SECRET_KEY    a long random string, e.g. from: python3 -c 'import secrets; print(secrets.token_urlsafe(50))'" >&2; \
	    echo "(make run needs none of them: SQLite, Celery in-process, the sweeps beside the server.)" >&2; \
	    exit 1; \
	fi; \
	case "$$(printenv DEBUG | tr A-Z a-z)" in 1|true|yes|on) \
	    echo "make services runs City for production: unset DEBUG (it is '$$DEBUG')." >&2; exit 1;; \
	esac

test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports
