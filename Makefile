# Atlas: two commands matter. `make run` starts the system, `make test` checks it.
# Everything else here is a step those two use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Debian packages the tests use, as command:package pairs; installed when missing.
SYSTEM_DEPS := wrk:wrk nginx:nginx curl:curl chromium:chromium hey:hey prometheus:prometheus

.DEFAULT_GOAL := help
.PHONY: help venv sysdeps lint typecheck imports pytest test run bench lock clean

help:
	@echo "make run    start a local Atlas network (ledger + 3 edges) on 127.0.0.1; Ctrl-C stops it"
	@echo "make test   lint, types, import contracts and all tests"
	@echo "make bench  every benchmark, one table, docs/performance.md (about 10 min; not in CI)"
	@echo "make fuzz   every fuzz target under atheris, FUZZ_SECONDS each (default 60; not in CI)"
	@echo "make lock   re-resolve constraints.txt from pyproject.toml"

# The virtualenv is rebuilt from the lock whenever the project or the lock changes.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

venv: $(STAMP)

# The project's modules byte-compiled (only those changed since the last time): installed
# editable, pip compiles none of them, and where PYTHONDONTWRITEBYTECODE is set (this machine)
# every process compiled its modules again on each start, about 75 ms of each atlas fetch.
.PHONY: bytecode
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q requester cdn_edge proxy launcher loadtest tests

sysdeps:
	@missing=""; for pair in $(SYSTEM_DEPS); do \
		command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP) sysdeps bytecode
	$(BIN)/pytest -n auto

test: lint typecheck imports pytest

run: $(STAMP) bytecode
	$(BIN)/atlas up --data-dir $(or $(ATLAS_DATA),./atlas-data)

# Every benchmark, one table, docs/performance.md and its plot (python -m loadtest bench).
# BENCH_ARGS: e.g. "--only proxy --no-doc" or "--quick".
bench: $(STAMP) bytecode
	$(BIN)/python -m loadtest bench --install-deps $(BENCH_ARGS)

# Locust load test of a whole local network (origin + atlas up), reports in loadtest/reports/.
# LOADTEST_ARGS: e.g. "-u 40 -t 2m", "--smoke", or "--sweep" (see loadtest/README.md).
.PHONY: loadtest
loadtest: $(STAMP)
	$(BIN)/python -m loadtest locust $(LOADTEST_ARGS)

# A network of hosts on this machine (Linux namespaces, root only; docs/edge.md): its tests, then
# the DHT load test (16 edges, about 5 min; not in make bench). DHT_ARGS: e.g. "--quick".
.PHONY: dht-net
dht-net: $(STAMP)
	$(BIN)/pytest tests/netns
	$(BIN)/python -m loadtest run dht $(DHT_ARGS)

# Coverage-guided fuzzing (atheris) of every wire decoder and endpoint parser in tests/fuzz/,
# FUZZ_SECONDS per target; not in CI (hypothesis runs the same targets there). Crashes, logs and
# the corpus go to fuzz-artifacts/. FUZZ_ARGS: e.g. "--only decode_gzip,quote".
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz: $(STAMP)
	@$(BIN)/python -c "import atheris" 2>/dev/null || \
		$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[fuzz]'
	$(BIN)/python -m tests.fuzz.run --all --seconds $(FUZZ_SECONDS) $(FUZZ_ARGS)

# Re-resolve the lock in a scratch venv from pyproject.toml alone.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet '.[dev]'
	{ echo "# The lock: exact versions make test installs. Regenerate with make lock."; \
	  .lock-venv/bin/python -m pip freeze --exclude atlas-cdn; } > constraints.txt
	rm -rf .lock-venv build *.egg-info

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info
