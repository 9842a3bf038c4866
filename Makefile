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

# `make run [HOST=0.0.0.0] [PORT=8080]`: migrate, keep an admin token, serve, and print the URL once the server
# answers. The server skips its own migration (FACEREC_AUTO_MIGRATE=false), so migrations run and log once.
# It runs in the background of the recipe's shell so that the shell can poll it; the trap stops it when make
# is interrupted (Ctrl-C) or terminated.
URL_HOST = $(if $(filter 0.0.0.0 ::,$(HOST)),127.0.0.1,$(HOST))
HEALTH_CHECK = import http.client, sys; c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=2); \
	c.request("GET", "/api/batch-photos/health"); c.getresponse()
# Exits non-zero when something already listens on the port: its answers must not pass for our server's.
PORT_IS_FREE = import socket, sys; sys.exit(socket.socket().connect_ex((sys.argv[1], int(sys.argv[2]))) == 0)

run: install
	@$(BIN)/python -c '$(PORT_IS_FREE)' $(URL_HOST) $(PORT) || { \
		echo "Port $(PORT) is already in use: stop what listens there, or choose another (make run PORT=8081)." >&2; \
		exit 1; }
	@mkdir -p $(dir $(ADMIN_TOKEN_FILE))
	@$(BIN)/facerec db upgrade
	@if [ ! -s $(ADMIN_TOKEN_FILE) ]; then \
		$(BIN)/facerec token create --domain localhost --admin --name "make run" 2>/dev/null | tail -n 1 > $(ADMIN_TOKEN_FILE); \
		chmod 600 $(ADMIN_TOKEN_FILE); \
		echo "Created an admin token for domain 'localhost' (kept in $(ADMIN_TOKEN_FILE)):"; \
	else \
		echo "Admin token for domain 'localhost' (from $(ADMIN_TOKEN_FILE)):"; \
	fi
	@cat $(ADMIN_TOKEN_FILE)
	@FACEREC_AUTO_MIGRATE=false $(BIN)/facerec serve --host $(HOST) --port $(PORT) & server=$$!; \
	trap 'kill $$server 2>/dev/null; wait $$server; exit 130' INT TERM HUP; \
	until $(BIN)/python -c '$(HEALTH_CHECK)' $(URL_HOST) $(PORT) 2>/dev/null; do \
		if ! kill -0 $$server 2>/dev/null; then wait $$server; exit $$?; fi; \
		sleep 0.2; \
	done; \
	echo "Serving on http://$(URL_HOST):$(PORT)/  (API docs: http://$(URL_HOST):$(PORT)/api/docs; Ctrl-C stops)"; \
	wait $$server

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
