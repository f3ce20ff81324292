# OpsMantik. `make dev` runs the whole stack locally; `make test` runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# Finds (or starts) PostgreSQL and prints its URL; one line on stderr says which.
DB := scripts/ensure-postgres.sh

.PHONY: dev test test-go bench deps fuzz package deploy

deps:
	@go mod download && echo "go: modules ready"

dev: deps
	@go build -o .build/opsmantik ./cmd/opsmantik && \
	export DATABASE_URL="$$($(DB))" && exec .build/opsmantik dev

# The suites that run a second and third time through a real PgBouncer in
# transaction mode (pkg/dbtest), once per pgx exec mode a pooler allows.
POOLED_PKGS := ./pkg/dbtest/ ./pkg/ingest/ ./pkg/watchtower/ ./pkg/audit/ ./cmd/opsmantik/

test: deps
	@export DATABASE_URL="$$($(DB))"; \
	$(OSLS) --version >/dev/null && \
	scripts/ensure-pgbouncer.sh && \
	scripts/ensure-pg-cron.sh && \
	scripts/ensure-dashboard-npm.sh && \
	go vet ./... && \
	go test -race -count=1 ./... && \
	for mode in exec simple_protocol; do \
	  echo "go test through PgBouncer (transaction mode), default_query_exec_mode=$$mode"; \
	  OPSMANTIK_TEST_PGBOUNCER=$$mode go test -race -count=1 -timeout=5m $(POOLED_PKGS) || exit 1; \
	done && \
	tracker/scripts/ensure-browser.sh && \
	node --test tracker/test/ && \
	node --test --test-concurrency=1 tracker/e2e/

# Run one fuzz target for a while, e.g. `make fuzz FUZZ=FuzzParse PKG=./pkg/ingest`.
FUZZ ?= FuzzParse
PKG ?= ./pkg/ingest
FUZZTIME ?= 30s
fuzz:
	go test -run=NONE -fuzz=$(FUZZ) -fuzztime=$(FUZZTIME) $(PKG)

# Sessions seeded for the daily-analytics benchmark: make bench SESSIONS=1000000.
SESSIONS ?= 100000
bench: deps
	@export DATABASE_URL="$$($(DB))"; \
	SESSIONS=$(SESSIONS) go run ./cmd/opsmantik bench && \
	go test -run='^$$' -bench=ColdStart -benchtime=7x ./pkg/deploy && \
	node tracker/bench/heartbeat.js

# Deployment (serverless.yml, README "Deploying to AWS"). `make package` builds
# dist/<function>.zip (linux/arm64 bootstrap) and dist/ux-core.js, then runs
# `osls package` offline into .serverless/; `make deploy` deploys exactly that.
# The functions' variables (DATABASE_URL, …) are read from the environment.
# OSLS_ARGS passes more, e.g. OSLS_ARGS='--param logRetentionDays=90'.
STAGE ?= prod
REGION ?= eu-central-1
OSLS_ARGS ?=
OSLS := scripts/osls.sh

package: deps
	@go run ./cmd/artifacts && \
	$(OSLS) package --stage $(STAGE) --region $(REGION) $(OSLS_ARGS)

deploy: package
	@$(OSLS) deploy --stage $(STAGE) --region $(REGION) --package .serverless $(OSLS_ARGS)
