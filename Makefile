# ctjdeploy — the two commands that work on a fresh machine (as root):
#   make demo   bring up the local stack and deploy the example app into it
#   make test   lint, every test (the local stack included), short fuzz runs
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
GO      ?= go
TOOLS   ?= $(HOME)/.cache/ctjdeploy/bin
STACK   := scripts/stack
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 30s
FUZZTIME_SHORT ?= 10s
# The Go vulnerability database, as the golang.org/x/vulndb module at this
# version (fetched through the Go module proxy like any module), indexed once
# into govulncheck's file layout under $(VULNDB).
VULNDB_VERSION ?= v0.0.0-20261105234957-e22db6528018
VULNDB  ?= $(TOOLS)/../vulndb/$(VULNDB_VERSION)

export CHECKPOINT_DISABLE := 1
export AWS_EC2_METADATA_DISABLED := true

.PHONY: all build tools lint vuln unit test test-go fuzz reliability demo stack-up stack-down bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ctjdeploy ./cmd/ctjdeploy

# Go tools for the checks, installed once into a cache folder, side by side
# (on a fresh machine each first waits on its module downloads).
TOOL_PKGS := honnef.co/go/tools/cmd/staticcheck@v0.8.2 github.com/rhysd/actionlint/cmd/actionlint@v1.7.12 \
	golang.org/x/vuln/cmd/govulncheck@v1.9.0 golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION)
tools:
	@mkdir -p $(TOOLS)
	@pids=(); for pkg in $(TOOL_PKGS); do \
	  bin="$${pkg%@*}"; bin="$${bin##*/}"; \
	  if [ ! -x $(TOOLS)/$$bin ]; then echo "installing $$pkg"; GOBIN=$(TOOLS) $(GO) install $$pkg & pids+=($$!); fi; \
	done; failed=0; for p in "$${pids[@]}"; do wait $$p || failed=1; done; \
	if [ $$failed != 0 ]; then echo "make tools: a go install above failed"; exit 1; fi

lint: tools
	@unformatted="$$(gofmt -l $$(git ls-files '*.go') $$(git ls-files --others --exclude-standard '*.go'))"; \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(TOOLS)/staticcheck ./...
	$(TOOLS)/actionlint

# Known vulnerabilities: govulncheck over the binary's code, offline, against
# the database built from golang.org/x/vulndb's data/osv (vulndb's own
# cmd/indexdb writes index/db.json, index/modules.json and ID/GO-*.json).
# A vulnerable symbol reached in a module dependency fails; one in the
# standard library is reported only (scripts/vulncheck decides).
vuln: tools
	@if [ ! -f $(VULNDB)/index/db.json ]; then \
	  src="$$(cd / && GOFLAGS= $(GO) mod download -json golang.org/x/vulndb@$(VULNDB_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p')"; \
	  test -d "$$src/data/osv" || { echo "vuln: golang.org/x/vulndb@$(VULNDB_VERSION) has no data/osv"; exit 1; }; \
	  rm -rf $(VULNDB).tmp && mkdir -p $(dir $(VULNDB)) && $(TOOLS)/indexdb -vulns "$$src/data/osv" -out $(VULNDB).tmp && mv $(VULNDB).tmp $(VULNDB); \
	fi
	@GOPROXY=off GOFLAGS=-mod=readonly $(TOOLS)/govulncheck -db file://$(abspath $(VULNDB)) -format json ./... | $(GO) run ./scripts/vulncheck

# Unit tests only: no stack.
unit:
	$(GO) test -short -count=1 ./...

# Every test, the local stack included (scripts/stack up installs and starts
# dockerd, the registry, moto and Terraform (the one on PATH when 1.5 or newer, else 1.5.7 built once); it is reused if running).
# `make test` leaves the tree as it found it: it fails if it changed a
# tracked file or left an untracked one (what `git status` shows, and the
# content of files that were already modified, before and after).
TREE_STATE = { git status --porcelain=v1 --untracked-files=all; git diff HEAD --binary | sha256sum; }
RELIABILITY_TMP ?= $(or $(TMPDIR),/tmp)/ctjdeploy-reliability.md

# The stack comes up in the background while lint and vuln run (on a fresh
# machine it mostly waits: debootstrap's downloads, npm), and test-go finds
# it up.
STACK_UP_LOG ?= $(or $(TMPDIR),/tmp)/ctjdeploy-stack-up.log
test:
	@before="$$($(TREE_STATE))"; \
	  $(STACK) up >/dev/null 2>$(STACK_UP_LOG) & stack=$$!; \
	  checks=0; $(MAKE) --no-print-directory lint vuln || checks=$$?; \
	  up=0; wait $$stack || up=$$?; cat $(STACK_UP_LOG); \
	  if [ $$checks != 0 ]; then exit $$checks; fi; \
	  if [ $$up != 0 ]; then echo "make test: scripts/stack up failed (exit $$up): see its log above"; exit $$up; fi; \
	  $(MAKE) --no-print-directory test-go fuzz; \
	  after="$$($(TREE_STATE))"; \
	  if [ "$$before" != "$$after" ]; then \
	    echo "make test changed the tree (git status before and after):"; \
	    diff <(echo "$$before") <(echo "$$after") || true; exit 1; \
	  fi; echo "make test: the tree is as it was (git status unchanged)"

# The fault suite's table goes outside the tree here; `make reliability`
# writes docs/reliability.md.
test-go:
	@$(STACK) up >/dev/null
	@set -a; source "$${CTJDEPLOY_STACK_DIR:-/tmp/ctjdeploy-stack}/env"; set +a; \
	  rm -f $(RELIABILITY_TMP); \
	  CTJDEPLOY_RELIABILITY_OUT=$(RELIABILITY_TMP) $(GO) test -race -count=1 -timeout 45m ./...
	@if [ -f $(RELIABILITY_TMP) ]; then \
	  if cmp -s $(RELIABILITY_TMP) docs/reliability.md; then echo "docs/reliability.md is current"; \
	  else echo "note: the fault suite's table ($(RELIABILITY_TMP)) differs from docs/reliability.md: run make reliability"; fi; fi

# docs/reliability.md from the fault-injection suite on the local stack
# (TestFaultSuite; ids, times and the moments signals land are normalised,
# so two runs write the same file).
reliability:
	@$(STACK) up >/dev/null
	@set -a; source "$${CTJDEPLOY_STACK_DIR:-/tmp/ctjdeploy-stack}/env"; set +a; \
	  CTJDEPLOY_RELIABILITY_OUT=$(CURDIR)/docs/reliability.md $(GO) test -count=1 -timeout 30m -run '^TestFaultSuite$$' ./deploy/

# Short fuzz runs: the config loader and the template renderer (30 s each),
# where a sensitive value may land over template shapes (FuzzTaint), the
# tag grammar, the mask over escaped forms and split writes, and the
# rollout outcome decisions over random answers (10 s each).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./internal/config/
	@if ls deploy/taskdef/*_test.go >/dev/null 2>&1 && grep -q 'func FuzzRender' deploy/taskdef/*_test.go; then \
	  $(GO) test -run '^$$' -fuzz '^FuzzRender$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./deploy/taskdef/; fi
	$(GO) test -run '^$$' -fuzz '^FuzzTaint$$' -fuzztime $(FUZZTIME_SHORT) -fuzzminimizetime 5s ./deploy/taskdef/
	$(GO) test -run '^$$' -fuzz '^FuzzValidTag$$' -fuzztime $(FUZZTIME_SHORT) -fuzzminimizetime 5s ./internal/config/
	$(GO) test -run '^$$' -fuzz '^FuzzMaskWriter$$' -fuzztime $(FUZZTIME_SHORT) -fuzzminimizetime 5s ./internal/report/
	$(GO) test -run '^$$' -fuzz '^FuzzDecide$$' -fuzztime $(FUZZTIME_SHORT) -fuzzminimizetime 5s ./deploy/rollout/
	$(GO) test -run '^$$' -fuzz '^FuzzParseImage$$' -fuzztime $(FUZZTIME_SHORT) -fuzzminimizetime 5s ./deploy/inspect/

demo:
	scripts/demo

stack-up:
	$(STACK) up

stack-down:
	$(STACK) down

bench:
	@for b in bench/*.sh; do echo "== $$b"; bash "$$b"; done

clean:
	rm -rf bin
