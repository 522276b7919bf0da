# Kamen member portal. Quick start: `make run` (try it) and `make test` (run the suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
PORT   ?= 8000

.PHONY: node-agent-dist run test test-fast bench chaos chaos-quick restore-drill lint format messages compilemessages migrate seed install install-dev clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Reinstall only when the requirement files change.
$(VENV)/.installed: requirements.txt | $(PY)
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

compilemessages: $(VENV)/.installed
	$(PY) manage.py compilemessages --ignore=.venv --ignore=var --verbosity=0

messages: $(VENV)/.installed
	$(PY) manage.py makemessages --locale=zh_Hans --locale=en --ignore=.venv --ignore=var --ignore=tests --ignore=benchmarks --no-obsolete
	$(PY) manage.py makemessages -d djangojs --locale=zh_Hans --locale=en --ignore=.venv --ignore=var --no-obsolete

migrate: $(VENV)/.installed
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

run: install compilemessages migrate seed
	PORT=$(PORT) exec scripts/run.sh

# On real PostgreSQL and Redis when they are set (DATABASE_URL, REDIS_URL) or
# installed (throwaway servers, stopped at the end); otherwise embedded
# (SQLite, no Redis), and the last line says what that left out. README
# "Testing"; KAMEN_TEST_SERVICES=embedded|throwaway forces a mode.
test: install-dev compilemessages
	scripts/test.sh $(PYTEST_ARGS)

# Everything but the slow whole-system tests (browsers, servers, workers,
# races), on every core (pytest-xdist).
test-fast: install-dev compilemessages
	$(PY) -m pytest -m "not slow" -n auto $(PYTEST_ARGS)

bench: install-dev compilemessages
	$(PY) -m benchmarks $(BENCH_ARGS)

# The fault campaign: own PostgreSQL, Redis (AOF), SMTP sink, gunicorn, two
# workers and beat on free loopback ports from 28100; ten faults of each kind;
# fails on any discrepancy with the model (README "Fault campaign").
chaos: install-dev compilemessages
	$(PY) -m benchmarks.chaos $(CHAOS_ARGS)

# The CI version: one fault of each kind, a shorter scenario.
chaos-quick: install-dev compilemessages
	$(PY) -m benchmarks.chaos --quick $(CHAOS_ARGS)

# pg_dump during traffic, restore into a fresh database, verify the copy
# (docs/deployment.md "The restore drill"). Free ports from 58200.
restore-drill: install-dev compilemessages
	$(PY) -m benchmarks.restore_drill $(DRILL_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf var test-output .pytest_cache

# The node agent's wheel and single-file zipapp (dist/), for nodes on Python 3.9+.
node-agent-dist:
	PYTHON=$(PYTHON) scripts/node_agent_dist.sh dist
