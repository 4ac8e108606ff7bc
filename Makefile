# Cross-government allow-list service. `make help` lists the targets.
GO      ?= go
BIN     := bin/allowlist
DB      ?= var/registry.db
LISTEN  ?= 127.0.0.1:8080
PKGS    := ./...

# The resolver (make resolve, make demo). Its config, var/resolver.yaml, is
# written afresh from these each time; for a config of your own run
# bin/allowlist resolve --config FILE.
REGISTRY   ?= http://$(LISTEN)
DNS_LISTEN ?= 127.0.0.1:5353
METRICS    ?= 127.0.0.1:9153
UPSTREAM   ?= $(shell awk '/^nameserver/ { if ($$2 ~ /:/) print "[" $$2 "]:53"; else print $$2 ":53"; exit }' /etc/resolv.conf)
DEMO_DNS   ?= 127.0.0.1:5300

.PHONY: help assets build run resolve demo test e2e test-short bench bench-go fuzz lint fmt tidy clean

help: ## show this help
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

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

build: $(ASSETS) ## build bin/allowlist (with the GOV.UK Frontend assets embedded) and bin/allowlist-resolver (the resolver alone)
	$(GO) build -o $(BIN) ./cmd/allowlist
	$(GO) build -o bin/allowlist-resolver ./cmd/allowlist-resolver

run: build ## start the registry on LISTEN (127.0.0.1:8080), seeded on first start
	@mkdir -p var
	./$(BIN) serve --db $(DB) --listen $(LISTEN) --seed

# resolver_config writes var/resolver.yaml for upstream $(1) with the
# public key that the shell command $(2) prints.
define resolver_config
	@mkdir -p var
	@key=$$($(2)); [ -n "$$key" ] || exit 1; \
	sed -e "s|@PUBLIC_KEY@|$$key|" -e "s|@UPSTREAM@|$(1)|" \
	  -e "s|^listen: [^ ]*|listen: $(DNS_LISTEN)|" -e "s|^registry: [^ ]*|registry: $(REGISTRY)|" \
	  -e "s|^metrics_listen: [^ ]*|metrics_listen: $(METRICS)|" data/resolver.example.yaml > var/resolver.yaml
	@echo "wrote var/resolver.yaml: DNS on $(DNS_LISTEN), registry $(REGISTRY), upstream $(1), metrics on $(METRICS)"
endef

# The key a resolver pins is the running registry's: PUBLIC_KEY if given
# (allowlist keygen --db DB on the registry's host prints it), otherwise
# read from REGISTRY/v1/keys and shown, to compare with the registry's.
registry_key = if [ -n "$(PUBLIC_KEY)" ]; then echo "$(PUBLIC_KEY)"; \
	else k=$$(curl -fsS --max-time 5 $(REGISTRY)/v1/keys | sed -n 's/.*"public_key":"\([^"]*\)".*/\1/p'); \
	if [ -z "$$k" ]; then echo "make resolve: cannot read the public key from $(REGISTRY)/v1/keys; is the registry running there? Or give PUBLIC_KEY=BASE64 (allowlist keygen --db DB on its host)" >&2; \
	else echo "make resolve: pinning the key $(REGISTRY)/v1/keys gave: $$k (compare with allowlist keygen on the registry's host)" >&2; echo "$$k"; fi; fi

resolve: build ## start the resolver for a running registry (REGISTRY, DNS_LISTEN, UPSTREAM=host:port, METRICS, PUBLIC_KEY)
	$(call resolver_config,$(UPSTREAM),$(registry_key))
	./$(BIN) resolve --config var/resolver.yaml

demo: build ## registry + a demo DNS answerer (DEMO_DNS) + the resolver on loopback (LISTEN, DNS_LISTEN, METRICS); prints what to try
	$(call resolver_config,$(DEMO_DNS),./$(BIN) keygen --db $(DB))
	@mkdir -p var; set -e; pids=""; trap 'kill $$pids 2>/dev/null; wait' EXIT INT TERM; \
	alive() { for p in $$pids; do kill -0 $$p 2>/dev/null || { echo "make demo: a part failed to start (see above); stopping" >&2; exit 1; }; done; }; \
	./$(BIN) serve --db $(DB) --listen $(LISTEN) --seed --log-level warn & pids="$$pids $$!"; \
	./$(BIN) demo-dns --listen $(DEMO_DNS) & pids="$$pids $$!"; \
	ok=""; for i in $$(seq 50); do curl -sf $(REGISTRY)/readyz >/dev/null && { ok=1; break; }; alive; sleep 0.2; done; \
	[ -n "$$ok" ] || { echo "make demo: the registry did not answer at $(REGISTRY)" >&2; exit 1; }; \
	./$(BIN) resolve --config var/resolver.yaml & pids="$$pids $$!"; \
	sleep 2; alive; h=$${DNS_LISTEN%:*}; p=$${DNS_LISTEN##*:}; \
	echo; echo "Try, in another terminal:"; \
	echo "  dig @$$h -p $$p zoom.us          # on the common list: answered (192.0.2.10, from the demo DNS)"; \
	echo "  dig @$$h -p $$p games.example.com  # not on the list: NXDOMAIN, with the reason in an EDE"; \
	echo "  curl -s http://$(METRICS)/metrics | grep allowlist_resolver_queries_total"; \
	echo "  open $(REGISTRY)/ for the pages"; echo; \
	wait

test: build ## run every test (real SQLite, sockets, processes and the real consumers)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

e2e: build ## end-to-end tests of the pages in headless Chromium (Debian chromium)
	cd e2e && npm ci --no-audit --no-fund --silent && npm test

test-short: ## skip the slow tests
	$(GO) test -short -count=1 $(PKGS)

bench: ## resolver vs Unbound and PowerDNS Recursor, registry and matcher, zone transfer to BIND/Unbound/PowerDNS (installs dnsperf etc.)
	bench/run.sh
	bench/zone.sh

bench-go: ## only the Go benchmarks (matcher, list loading and patching, publication, stores)
	$(GO) test -run '^$$' -bench . -benchmem -count 3 -timeout 30m ./allowlist/ ./allowlist/list/ ./allowlist/sqlite/ ./allowlist/postgres/ ./resolver/

FUZZTIME ?= 30s
fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	$(GO) test -run '^$$' -fuzz '^FuzzParsePattern$$' -fuzztime $(FUZZTIME) ./allowlist/
	$(GO) test -run '^$$' -fuzz '^FuzzParseList$$' -fuzztime $(FUZZTIME) ./allowlist/list/
	$(GO) test -run '^$$' -fuzz '^FuzzVerifier$$' -fuzztime $(FUZZTIME) ./allowlist/list/
	$(GO) test -run '^$$' -fuzz '^FuzzPatchList$$' -fuzztime $(FUZZTIME) ./allowlist/list/
	$(GO) test -run '^$$' -fuzz '^FuzzServeDNS$$' -fuzztime $(FUZZTIME) ./resolver/
	$(GO) test -run '^$$' -fuzz '^FuzzParseQuery$$' -fuzztime $(FUZZTIME) ./resolver/
	$(GO) test -run '^$$' -fuzz '^FuzzUpstreamAnswer$$' -fuzztime $(FUZZTIME) ./resolver/
	$(GO) test -run '^$$' -fuzz '^FuzzZoneServeDNS$$' -fuzztime $(FUZZTIME) ./zone/

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint: ## gofmt, go vet, staticcheck, and the direction of imports
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)
	@# The resolver, its own executable and the core build without cgo (no SQLite in them).
	CGO_ENABLED=0 $(GO) build ./resolver/ ./allowlist/ ./allowlist/list/ ./cmd/allowlist-resolver/
	@# Imports point one way: the core and the resolver never reach the store or HTTP framework.
	@bad=$$($(GO) list -deps ./allowlist | grep -E 'database/sql|labstack/echo|miekg/dns|prometheus|yaml' || true); \
	  if [ -n "$$bad" ]; then echo "allowlist/ imports: $$bad"; exit 1; fi
	@# The list format stands alone: it imports nothing of the registry.
	@bad=$$($(GO) list -deps ./allowlist/list | grep -E '^github.com/cross-gov/allowlist/' | grep -v '^github.com/cross-gov/allowlist/allowlist/list$$' || true); \
	  if [ -n "$$bad" ]; then echo "allowlist/list imports: $$bad"; exit 1; fi
	@bad=$$($(GO) list -deps ./resolver | grep -E 'allowlist/sqlite|allowlist/postgres|jackc/pgx|labstack/echo|mattn/go-sqlite3' || true); \
	  if [ -n "$$bad" ]; then echo "resolver/ imports: $$bad"; exit 1; fi
	@# The resolver-only executable links no store, database driver or web framework.
	@bad=$$($(GO) list -deps ./cmd/allowlist-resolver | grep -E 'sqlite|labstack/echo|jackc/pgx|allowlist/postgres|allowlist/api|allowlist/web' || true); \
	  if [ -n "$$bad" ]; then echo "cmd/allowlist-resolver links: $$bad"; exit 1; fi
	@bad=$$($(GO) list -deps ./zone | grep -E 'allowlist/sqlite|labstack/echo|mattn/go-sqlite3|database/sql' || true); \
	  if [ -n "$$bad" ]; then echo "zone/ imports: $$bad"; exit 1; fi

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

tidy: ## tidy go.mod
	$(GO) mod tidy

clean: ## remove build output (keeps var/ and its data)
	rm -rf bin
