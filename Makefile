# The two commands: `make run` (set up and serve) and `make test` (set up and run every check).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
ADMIN_TOKEN_FILE := storage/admin-token.txt

CHROMIUM := /usr/bin/chromium

.PHONY: run test install install-dev browser lint typecheck pytest clean mutate

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

# `make mutate [MODULES="service/api/auth.py service/db/tokens.py"] [MUTATE_JOBS=2]`: mutation testing (mutmut) of
# the modules that hold the rules ([tool.mutmut] in pyproject.toml) against the fast tests, then the score per
# module. Not part of `make test`. mutmut writes its mutated copy under mutants/ of the folder it runs in, so it
# runs in a copy of the tree under MUTATE_DIR: nothing of it lands in the repository, and tests running there at
# the same time are not disturbed. Every run starts afresh (a test changed since the last run could otherwise
# keep a stale verdict). The tests find ../shared next to the repository; the copy gets a link to it.
MUTATE_DIR  ?= /tmp/facerec-mutate
MUTATE_JOBS ?= 2
MUTATE_MIN  ?= 90
MODULES     ?=
MUTANT_GLOBS = $(foreach m,$(MODULES),'$(subst /,.,$(patsubst %.py,%,$(m))).*')

define MUTATION_SCORE
import json, sys, tomllib
from pathlib import Path
modules = sys.argv[2:] or tomllib.loads(Path("pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"]
killed_codes = {1, 3, 24, -24, 152, 255, 36, 37}  # killed, or timed out / type error: the mutant was noticed
total_killed = total = 0
survivors = []
print(f"{'module':40} {'killed':>7} {'total':>6} {'score':>7}")
for module in modules:
    meta = Path("mutants", module + ".meta")
    codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
    killed = sum(code in killed_codes for code in codes.values())
    survivors += [f"{name}  ({'no tests' if code in (5, 33) else 'survived' if code == 0 else code})"
                  for name, code in codes.items() if code not in killed_codes]
    total_killed, total = total_killed + killed, total + len(codes)
    print(f"{module:40} {killed:7} {len(codes):6} {100 * killed / max(len(codes), 1):6.1f}%")
score = 100 * total_killed / max(total, 1)
print(f"{'all':40} {total_killed:7} {total:6} {score:6.1f}%")
print("Not killed (mutmut show NAME, in " + str(Path.cwd()) + "):" if survivors else "Every mutant killed.")
print("\n".join("  " + s for s in survivors))
sys.exit(0 if score >= float(sys.argv[1]) else f"Mutation score {score:.1f}% is below {sys.argv[1]}%")
endef
export MUTATION_SCORE

# What the fork server imports before forking a child per mutant: pytest, its plugins, conftest, the test modules.
define MUTATION_PRELOAD
import tomllib
from importlib.metadata import entry_points
from pathlib import Path
tests = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["mutmut"]["pytest_add_cli_args_test_selection"]
modules = ["pytest", *sorted({ep.value.split(":")[0] for ep in entry_points(group="pytest11")}), "tests.conftest"]
modules += [test.removesuffix(".py").replace("/", ".") for test in tests if test.endswith(".py")]
Path("mutmut-preload.txt").write_text("\n".join(modules) + "\n")
endef
export MUTATION_PRELOAD

mutate: install-dev
	@case "$(CURDIR)/" in "$(abspath $(MUTATE_DIR))/"*) \
		echo "MUTATE_DIR must be outside the repository (it is emptied): $(MUTATE_DIR)" >&2; exit 1;; esac
	@mkdir -p $(MUTATE_DIR) && cd $(MUTATE_DIR) && rm -rf mutants service tests migrations pyproject.toml shared mutmut-preload.txt
	@cp -a service tests migrations pyproject.toml $(MUTATE_DIR)/
	@find $(MUTATE_DIR) -name __pycache__ -prune -exec rm -rf {} +
	@ln -s $(abspath $(CURDIR)/../shared) $(MUTATE_DIR)/shared
	@cd $(MUTATE_DIR) && $(CURDIR)/$(BIN)/python -c "$$MUTATION_PRELOAD"
	@echo "Mutation testing in $(MUTATE_DIR) with $(MUTATE_JOBS) workers; this takes a while."
	cd $(MUTATE_DIR) && OMP_NUM_THREADS=1 $(CURDIR)/$(BIN)/mutmut run --max-children $(MUTATE_JOBS) $(MUTANT_GLOBS)
	@cd $(MUTATE_DIR) && $(CURDIR)/$(BIN)/python -c "$$MUTATION_SCORE" $(MUTATE_MIN) $(MODULES)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
