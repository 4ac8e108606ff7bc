# Cross-government allow-list service. `make help` lists the targets.
GO      ?= go
BIN     := bin/allowlist
DB      ?= var/registry.db
LISTEN  ?= 127.0.0.1:8080
PKGS    := ./...

UPSTREAM ?= $(shell awk '/^nameserver/ { if ($$2 ~ /:/) print "[" $$2 "]:53"; else print $$2 ":53"; exit }' /etc/resolv.conf)

.PHONY: help assets build run resolve test e2e test-short bench fuzz lint fmt tidy clean

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

ASSETS := web/static/govuk/assets/govuk-frontend.min.css

# GOV.UK Frontend comes from the npm registry at build time and is embedded
# in the binary. Without npm the pages still work, unstyled.
$(ASSETS): web/package.json web/package-lock.json
	@if command -v npm >/dev/null; then \
	  (cd web && npm ci --no-audit --no-fund --silent) && \
	  rm -rf web/static/govuk && mkdir -p web/static/govuk && \
	  cp -R web/node_modules/govuk-frontend/dist/govuk/assets web/static/govuk/assets && \
	  cp web/node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.css $(ASSETS); \
	else echo "npm not found: building without GOV.UK Frontend styles"; fi

assets: $(ASSETS) ## fetch GOV.UK Frontend and copy it into web/static

build: $(ASSETS) ## build bin/allowlist (with the GOV.UK Frontend assets embedded)
	$(GO) build -o $(BIN) ./cmd/allowlist

run: build ## start the registry on 127.0.0.1:8080, seeded on first start
	@mkdir -p var
	./$(BIN) serve --db $(DB) --listen $(LISTEN) --seed

resolve: build ## start the resolver on 127.0.0.1:5353 for the local registry (UPSTREAM=host:port)
	@mkdir -p var
	@test -f var/resolver.yaml || sed -e "s|@PUBLIC_KEY@|$$(./$(BIN) keygen --db $(DB))|" -e "s|@UPSTREAM@|$(UPSTREAM)|" data/resolver.example.yaml > var/resolver.yaml
	./$(BIN) resolve --config var/resolver.yaml

test: build ## run every test (real SQLite, sockets and processes)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

e2e: build ## end-to-end tests of the pages in headless Chromium (Debian chromium)
	cd e2e && npm ci --no-audit --no-fund --silent && npm test

test-short: ## skip the slow tests
	$(GO) test -short -count=1 $(PKGS)

bench: ## resolver vs Unbound and PowerDNS Recursor, registry and matcher (installs dnsperf etc.)
	bench/run.sh

bench-go: ## only the Go benchmarks (matcher, list loading and patching, publication)
	$(GO) test -run '^$$' -bench . -benchmem -count 3 -timeout 30m ./allowlist/ ./allowlist/sqlite/ ./resolver/

FUZZTIME ?= 30s
fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	$(GO) test -run '^$$' -fuzz '^FuzzParsePattern$$' -fuzztime $(FUZZTIME) ./allowlist/
	$(GO) test -run '^$$' -fuzz '^FuzzParseList$$' -fuzztime $(FUZZTIME) ./allowlist/
	$(GO) test -run '^$$' -fuzz '^FuzzListVerifier$$' -fuzztime $(FUZZTIME) ./allowlist/
	$(GO) test -run '^$$' -fuzz '^FuzzPatchList$$' -fuzztime $(FUZZTIME) ./allowlist/
	$(GO) test -run '^$$' -fuzz '^FuzzServeDNS$$' -fuzztime $(FUZZTIME) ./resolver/
	$(GO) test -run '^$$' -fuzz '^FuzzParseQuery$$' -fuzztime $(FUZZTIME) ./resolver/
	$(GO) test -run '^$$' -fuzz '^FuzzUpstreamAnswer$$' -fuzztime $(FUZZTIME) ./resolver/

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@# Imports point one way: the core and the resolver never reach the store or HTTP framework.
	@bad=$$($(GO) list -deps ./allowlist | grep -E 'database/sql|labstack/echo|miekg/dns|prometheus|yaml' || true); \
	  if [ -n "$$bad" ]; then echo "allowlist/ imports: $$bad"; exit 1; fi
	@bad=$$($(GO) list -deps ./resolver | grep -E 'allowlist/sqlite|labstack/echo|mattn/go-sqlite3' || true); \
	  if [ -n "$$bad" ]; then echo "resolver/ imports: $$bad"; exit 1; fi

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

tidy: ## tidy go.mod
	$(GO) mod tidy

clean: ## remove build output (keeps var/ and its data)
	rm -rf bin
