# Two commands on a fresh machine: `make run` and `make test`. Everything they need is installed here.
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
DATA   ?= .consortium

.PHONY: setup run test unit lint bench clean browser postgres

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

run: setup
	$(BIN)/consortium up --data-dir $(DATA)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

# The console's browser tests drive Debian's Chromium through Playwright (Playwright cannot download its own
# browser on a closed network): installed here when missing, as root or through sudo.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

# The PostgreSQL tests (tests/chain/test_postgres.py) start a server of their own from the machine's server
# binaries, found through pg_config (tests/helpers/postgres.py says how): Debian's postgresql is installed here
# when they are missing, as root or through sudo.
postgres: setup
	@$(PY) -m tests.helpers.postgres >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql; }
	@$(PY) -m tests.helpers.postgres

test: setup lint browser postgres
	$(BIN)/pytest -n 2 --dist loadfile

# The pure tests alone (tests/unit/): no Anvil, no node processes.
unit: setup
	$(BIN)/pytest -m "not chain"

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) node_modules build $(DATA)
