# fieldagent — see README.md. `make help` lists the targets.

GO            ?= go
PKG           := ./...
BIN           := bin/fieldagent
DIST          := dist
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT        ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
DATE          ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS       := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# An execution count, not a duration: with a duration Go 1.26's fuzz
# coordinator can fail at the deadline with "context deadline exceeded" and
# no crasher (golang/go#75804, fixed in Go 1.27). FUZZTIME=60s still works.
FUZZTIME      ?= 400000x
# Targets whose every input runs a whole session get a smaller budget.
FUZZ_SLOW     := FuzzChannelReplay
FUZZTIME_SLOW ?= 100000x
BENCHTIME     ?= 3x
# Debian packages the tests use: real snmpd/sshd peers (python3 runs the XT-2
# CLI script behind sshd), iperf3 as the speed
# reference, iproute2/nftables for network namespaces.
TEST_DEBS     := snmpd snmp openssh-server openssh-client iperf3 iproute2 nftables python3 iputils-ping

export CGO_ENABLED ?= 0

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-10s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build bin/fieldagent for this machine
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/fieldagent

.PHONY: demo
demo: build ## Run the lab demo: a simulated site and one e8 order, end to end
	./$(BIN) lab demo

.PHONY: test
test: lint test-race fuzz ## Everything CI runs: lint, race tests, a short fuzz run

.PHONY: test-race
test-race: ## go test -race on every package
	CGO_ENABLED=1 $(GO) test -race -count=1 $(PKG)

.PHONY: lint
lint: ## gofmt, go mod tidy -diff, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) vet $(PKG)
	$(GO) run $(STATICCHECK) $(PKG)

.PHONY: fuzz
fuzz: ## Run every Fuzz target for FUZZTIME each (default 400000 executions)
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
	  dir=$$(dirname $$f); \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/^func //'); do \
	    ft=$(FUZZTIME); case " $(FUZZ_SLOW) " in *" $$t "*) ft=$(FUZZTIME_SLOW);; esac; \
	    echo "fuzz $$dir $$t ($$ft)"; \
	    $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$$ft $$dir; \
	  done; \
	done

.PHONY: bench
bench: ## Run the benchmarks the issues name and print figures (speed vs iperf3)
	@mkdir -p $(DIST)
	$(GO) test -run='^$$' -bench=. -benchtime=$(BENCHTIME) ./diagnostics/... ./tr069/... ./drivers/... > $(DIST)/bench.txt || { cat $(DIST)/bench.txt; exit 1; }
	$(GO) test -run='^$$' -bench=BenchmarkFleet1000 -benchtime=1x ./testlab/fleet/ >> $(DIST)/bench.txt || { cat $(DIST)/bench.txt; exit 1; }
	$(GO) test -run='^$$' -bench=BenchmarkServeFleet1000 -benchtime=1x ./cmd/fieldagent/ >> $(DIST)/bench.txt || { cat $(DIST)/bench.txt; exit 1; }
	$(GO) test -run='^$$' -bench=BenchmarkDeviceList10k -benchtime=10x ./agent/server/ >> $(DIST)/bench.txt || { cat $(DIST)/bench.txt; exit 1; }
	$(GO) test -run='^$$' -bench=BenchmarkNBISimFleetDiagnose -benchtime=1x ./testlab/nbisim/ >> $(DIST)/bench.txt || { cat $(DIST)/bench.txt; exit 1; }
	@cat $(DIST)/bench.txt
	@awk '$$1 ~ /^BenchmarkIperf3Loopback-/ { iu = $$5 } \
	  $$1 ~ /^BenchmarkIperf3LoopbackReverse-/ { id = $$5 } \
	  $$1 ~ /^BenchmarkDownloadLoopbackOneStream-/ { hd = $$5 } \
	  $$1 ~ /^BenchmarkUploadLoopbackOneStream-/ { hu = $$5 } \
	  $$1 ~ /^BenchmarkNDT7DownloadLoopback-/ { nd = $$5 } \
	  $$1 ~ /^BenchmarkNDT7UploadLoopback-/ { nu = $$5 } \
	  $$1 ~ /^BenchmarkShapedLink\// { split($$1, k, "/"); sub(/-[0-9]+$$/, "", k[4]); v[k[2] " " k[3] " " k[4]] = $$5 } \
	  $$1 ~ /^BenchmarkClientPeakMemory\// { n = $$1; sub(/-[0-9]+$$/, "", n); sub(/^BenchmarkClientPeakMemory\//, "", n); mem = mem sprintf(" %s %.1f MiB", n, $$7) } \
	  END { if (iu > 0 && id > 0) \
	          printf "\nspeed test vs iperf3, one stream on loopback, same run: fieldagent down %.2fx up %.2fx, ndt7 down %.2fx up %.2fx (iperf3 -R %d, iperf3 %d Mbit/s)\n", hd/id, hu/iu, nd/id, nu/iu, id, iu; \
	        else print "\niperf3 not measured (make test-deps installs it): no ratio"; \
	        for (r in v) { split(r, k, " "); ref = v["iperf3 " k[2] " " k[3]]; \
	          if (k[1] != "iperf3" && ref > 0) printf "shaped link %s %s %s: %.3fx iperf3 (%.2f vs %.2f Mbit/s)\n", k[2], k[3], k[1], v[r]/ref, v[r], ref } \
	        if (mem != "") print "speed test client peak RSS:" mem }' $(DIST)/bench.txt
	@awk '/^BenchmarkBulkWalkIFMIB\/interfaces-/{o=$$5} /^BenchmarkSnmpbulkwalk/{n=$$5} \
	  END{ if (n>0) printf "IF-MIB bulk walk vs net-snmp snmpbulkwalk, same run: %.1fx (%d vs %d varbinds/s)\n", o/n, o, n; \
	       else print "snmpbulkwalk not measured (make test-deps installs it): no ratio" }' $(DIST)/bench.txt
	@grep -h '^BenchmarkFleet1000' $(DIST)/bench.txt | tr '\t' ' ' | sed 's/^/testlab fleet, 1,000 simulated gateways against one ACS: /' || echo "fleet not measured"
	@grep -h '^BenchmarkServeFleet1000' $(DIST)/bench.txt | tr '\t' ' ' | sed 's/^/serve, 1,000 gateways informing periodically during a fleet diagnosis at concurrency 100: /' || echo "serve fleet not measured"
	@grep -h '^BenchmarkDeviceList10k' $(DIST)/bench.txt | tr '\t' ' ' | sed 's/^/serve, 10,000 devices in the registry, list and search through the API: /' || echo "device list not measured"
	@grep -h '^BenchmarkFleetDiagnoseNBI\|^BenchmarkNBISimFleetDiagnose' $(DIST)/bench.txt | tr '\t' ' ' | sed 's/^/GenieACS NBI fleet diagnosis: /' || echo "NBI fleet not measured"
	@awk '/^BenchmarkPingVsSystemPing/{p=$$5; q=$$7; r=$$9} \
	  END{ if (r>0) printf "ping avg RTT vs iputils ping over a 20 ms userspace link, same run: %.3fx (%.2f vs %.2f ms)\n", r, q, p; \
	       else print "ping vs iputils ping not measured (needs root, /dev/net/tun and iputils-ping)" }' $(DIST)/bench.txt

.PHONY: cross
cross: ## Static binaries for linux/amd64, linux/arm64 and linux/arm (GOARM=7) in dist/
	@mkdir -p $(DIST)
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(DIST)/fieldagent-linux-amd64 ./cmd/fieldagent
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(DIST)/fieldagent-linux-arm64 ./cmd/fieldagent
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(DIST)/fieldagent-linux-armv7 ./cmd/fieldagent
	@ls -l $(DIST)/

.PHONY: test-deps
test-deps: ## Install the Debian packages the tests need (apt-get, when root)
	@missing=""; for p in $(TEST_DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "test-deps: all installed ($(TEST_DEBS))"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "test-deps: missing$$missing; run as root: apt-get install -y$$missing"; exit 1; fi; \
	echo "test-deps: installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing
	$(GO) mod download

.PHONY: clean
clean: ## Remove bin/ and dist/
	rm -rf bin $(DIST)
