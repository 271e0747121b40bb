# `make run` serves the app; `make test` runs every test. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test venv lint clean screenshots bench chromium translations catalogs

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# The catalogs: webapp/translations/<language>/LC_MESSAGES/messages.po are in the
# repository; `make translations` re-extracts every text and updates them, and
# `catalogs` compiles the .mo files the app reads (built, never committed).
CATALOG_DIR := webapp/translations
PYBABEL := $(BIN)/pybabel

translations: venv
	$(PYBABEL) -q extract -F babel.cfg -k _l -k N_ --no-location --sort-output \
		--msgid-bugs-address="" --project=Keystone -o $(CATALOG_DIR)/messages.pot .
	$(PYBABEL) -q update -i $(CATALOG_DIR)/messages.pot -d $(CATALOG_DIR) --no-fuzzy-matching --ignore-obsolete
	$(MAKE) catalogs
	$(BIN)/python scripts/check_catalogs.py

catalogs: venv
	$(PYBABEL) -q compile -d $(CATALOG_DIR)

run: venv catalogs
	$(FLASK) db upgrade
	$(FLASK) run --host 127.0.0.1 --port 5000

lint: venv
	$(BIN)/ruff check webapp tests migrations scripts wsgi.py
	$(BIN)/ruff format --check webapp tests migrations scripts wsgi.py
	$(BIN)/bandit -q -ll -c pyproject.toml -r webapp
	$(BIN)/lint-imports --no-cache
	$(BIN)/python scripts/check_catalogs.py

# The browser tests drive Chromium (Debian's by default; CHROMIUM=/path/to/chrome
# names another); never `playwright install`. Without it, apt-get installs it, or
# we say what to install.
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM

chromium:
	@[ -x "$(CHROMIUM)" ] || { \
		if ! command -v apt-get >/dev/null 2>&1; then \
			echo "The browser tests need Chromium at $(CHROMIUM), and there is no apt-get here to install it."; \
			echo "Install Chromium or Google Chrome with your package manager, then run:"; \
			echo "    make test CHROMIUM=/path/to/chromium"; \
			echo "or run the suite without the browser tests: .venv/bin/pytest --ignore=tests/browser"; \
			exit 1; \
		elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi; }

test: venv catalogs lint chromium
	$(BIN)/pytest

# `make bench` (SQLite) or `make bench DB=postgres`; extra flags in BENCH_ARGS,
# e.g. BENCH_ARGS="--duration 5 --only 1,2". Installs Debian's wrk if missing.
bench: venv
	@command -v wrk >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq wrk; fi; }
	$(BIN)/python bench/run.py $(if $(filter postgres,$(DB)),--postgres) $(BENCH_ARGS)

# Pictures of the main pages at desktop and phone widths, into docs/screenshots/.
screenshots: venv catalogs
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache
