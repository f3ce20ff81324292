# OpsMantik. `make dev` runs the whole stack locally; `make test` runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# Finds (or starts) PostgreSQL and prints its URL; one line on stderr says which.
DB := scripts/ensure-postgres.sh

.PHONY: dev test test-go bench deps fuzz

deps:
	@go mod download && echo "go: modules ready"

dev: deps
	@export DATABASE_URL="$$($(DB))"; exec go run ./cmd/opsmantik dev

test: deps
	@export DATABASE_URL="$$($(DB))"; \
	go vet ./... && \
	go test -race -count=1 ./...

# Run one fuzz target for a while, e.g. `make fuzz FUZZ=FuzzParse PKG=./pkg/ingest`.
FUZZ ?= FuzzParse
PKG ?= ./pkg/ingest
FUZZTIME ?= 30s
fuzz:
	go test -run=NONE -fuzz=$(FUZZ) -fuzztime=$(FUZZTIME) $(PKG)

bench: deps
	@export DATABASE_URL="$$($(DB))"; \
	go run ./cmd/opsmantik bench
