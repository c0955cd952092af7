# Portcullis: `make run` starts the whole stack, `make test` checks it.
GO      ?= go
# The tools (buf, grpcurl, protoc plugins, benchstat) are a module of their
# own, tools/go.mod, so that the library's importers do not inherit them.
TOOL    := $(GO) tool -modfile=tools/go.mod
BUF     := $(TOOL) buf
GOFILES  = $(shell git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './gen/*')

SHELL       := bash
.SHELLFLAGS := -o pipefail -c

WEBCLIENT := services/webclient

.PHONY: all generate web lint build test fleet run bench clean

all: generate web lint build test

## generate: regenerate gen/ from proto/ (Go, connect-go, the buf image gen/portcullis.binpb) and the web client's TypeScript SDK
generate: $(WEBCLIENT)/node_modules/.package-lock.json
	$(BUF) generate
	$(BUF) build -o gen/portcullis.binpb
	$(BUF) generate --template $(WEBCLIENT)/buf.gen.yaml

## web: type-check the web client and bundle services/webclient/dist/app.js (committed: the Go server embeds it)
web: $(WEBCLIENT)/node_modules/.package-lock.json
	cd $(WEBCLIENT) && npm run build

$(WEBCLIENT)/node_modules/.package-lock.json: $(WEBCLIENT)/package-lock.json
	cd $(WEBCLIENT) && npm ci --no-audit --no-fund

## lint: buf lint and format, go vet, gofmt
lint:
	$(BUF) lint
	$(BUF) format -d --exit-code
	$(GO) vet ./...
	@unformatted="$$(gofmt -l $(GOFILES))"; if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

## build: compile every package and the portcullis binary into bin/
build:
	$(GO) build ./...
	$(GO) build -o bin/portcullis ./cmd/portcullis

## test: every test, with the race detector (TestDevTour builds buf and grpcurl when they are not in the Go cache: minutes)
test:
	$(GO) test -race -count=1 -timeout 20m ./...

## fleet: the fleet test alone (part of test): an issuer, three backend replicas and three gateway processes sharing a Redis Cluster
fleet:
	$(GO) test -race -count=1 -run '^TestFleet$$' -v ./cmd/portcullis

## run: build bin/portcullis, then start the whole stack on one machine (issuer, backends, gateway); DEV_FLAGS are passed to "portcullis dev"
# The binary runs itself, not under "go run": after an interrupt go run exits 1
# whatever its program did, and make reports an error. On Ctrl-C portcullis
# drains and exits 0, and make stops without one.
run:
	@echo "building bin/portcullis (the first time, this downloads its modules and compiles every package: a few minutes)"
	@n=$$($(GO) list -deps ./cmd/portcullis | wc -l) && echo "  $$n packages" && \
	  $(GO) build -v -o bin/portcullis ./cmd/portcullis 2>&1 | awk -v n=$$n \
	    '/^[^ :#]+$$/ { if (++c % 50 == 0) printf "  compiled %d of %d\n", c, n; next } { print } END { printf "  done: compiled %d of %d packages, the others were cached\n", c, n }'
	@bin/portcullis dev $(DEV_FLAGS)

## bench: micro-benchmarks (benchstat summary), redis-benchmark's baseline, and the end-to-end load harness against HAProxy with the same policy; rewrites BENCHMARKS.md
bench: bench-tools
	mkdir -p benchmarks
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 300ms -count 6 ./gateway/... ./services/... > benchmarks/micro.txt
	$(TOOL) benchstat benchmarks/micro.txt > benchmarks/micro-benchstat.txt
	sha=$$(redis-cli -h 127.0.0.1 script load 'return 1') && \
	  redis-benchmark -h 127.0.0.1 -q -c 50 -n 200000 evalsha $$sha 0 | tr '\r' '\n' | tail -n 1 > benchmarks/redis-benchmark.txt
	$(GO) run ./cmd/loadtest -out benchmarks -update BENCHMARKS.md -cpuprofile benchmarks/gateway-cpu.pprof -instructions 1000 -experiment $(BENCH_EXPERIMENTS)
	$(GO) run ./cmd/loadtest -quick -cycles 3 -gateway-env GOGC=100 -out benchmarks/gogc100

# The candidates for the request path that make bench measures beside the
# gateway, in the same cycles (cmd/loadtest/experiment.go). With
# BASELINE=<commit>, the gateway built from that commit is measured too, as
# "before": make bench BASELINE=main~3
EXPERIMENTS ?= grpc-listen,frame-relay,relay,grpc-go,grpc-go-in,grpc-go-out
comma := ,
BENCH_EXPERIMENTS = $(EXPERIMENTS)$(if $(BASELINE),$(comma)before -baseline $(BASELINE))

## bench-instructions: the gateway's instructions per call under valgrind's callgrind (a figure that does not drift with the machine's load)
bench-instructions: bench-tools
	$(GO) run ./cmd/loadtest -instructions-only

# The load harness's peers and tools, from Debian: HAProxy, h2load
# (nghttp2-client) and valgrind, installed when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
.PHONY: bench-tools bench-instructions
bench-tools:
	@command -v haproxy >/dev/null && command -v h2load >/dev/null && command -v valgrind >/dev/null || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y haproxy nghttp2-client valgrind; }

clean:
	rm -rf bin
