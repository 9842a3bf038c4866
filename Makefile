# The two commands: `make run` (set up and serve) and `make test` (set up and run every check).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
ADMIN_TOKEN_FILE := storage/admin-token.txt

CHROMIUM := /usr/bin/chromium

.PHONY: run test install install-dev browser lint typecheck pytest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install only when the dependency list changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/facerec db upgrade
	@if [ ! -s $(ADMIN_TOKEN_FILE) ]; then \
		$(BIN)/facerec token create --domain localhost --admin --name "make run" 2>/dev/null | tail -n 1 > $(ADMIN_TOKEN_FILE); \
		chmod 600 $(ADMIN_TOKEN_FILE); \
		echo "Created an admin token for domain 'localhost' (kept in $(ADMIN_TOKEN_FILE)):"; \
	else \
		echo "Admin token for domain 'localhost' (from $(ADMIN_TOKEN_FILE)):"; \
	fi
	@cat $(ADMIN_TOKEN_FILE)
	@echo "Serving on http://$(HOST):$(PORT)/  (API docs: http://$(HOST):$(PORT)/api/docs)"
	$(BIN)/facerec serve --host $(HOST) --port $(PORT)

# The browser tests drive Debian's Chromium (Playwright never downloads a browser here).
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else \
			echo "The web tests need Chromium at $(CHROMIUM): sudo apt-get install chromium" >&2; exit 1; \
		fi; \
	fi

lint: install-dev
	$(BIN)/ruff check service tests benchmarks migrations
	$(BIN)/ruff format --check service tests benchmarks migrations

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev browser
	$(BIN)/pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
