# Portcullis: `make run` starts the whole stack, `make test` checks it.
GO      ?= go
BUF     := $(GO) tool buf
GOFILES  = $(shell git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './gen/*')

.PHONY: all generate lint build test run bench clean

all: generate lint build test

## generate: regenerate gen/ from proto/ (Go, connect-go, and the buf image gen/portcullis.binpb)
generate:
	$(BUF) generate
	$(BUF) build -o gen/portcullis.binpb

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

## test: every test, with the race detector
test:
	$(GO) test -race -count=1 ./...

## run: start the whole stack on one machine (issuer, backends, gateway)
run:
	$(GO) run ./cmd/portcullis dev

## bench: micro-benchmarks (benchstat summary), redis-benchmark's baseline, and the end-to-end load harness; rewrites BENCHMARKS.md
bench:
	mkdir -p benchmarks
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 300ms -count 6 ./gateway/... ./services/... > benchmarks/micro.txt
	$(GO) tool benchstat benchmarks/micro.txt > benchmarks/micro-benchstat.txt
	sha=$$(redis-cli -h 127.0.0.1 script load 'return 1') && \
	  redis-benchmark -h 127.0.0.1 -q -c 50 -n 200000 evalsha $$sha 0 | tr '\r' '\n' | tail -n 1 > benchmarks/redis-benchmark.txt
	$(GO) run ./cmd/loadtest -out benchmarks -update BENCHMARKS.md -cpuprofile benchmarks/gateway-cpu.pprof
	$(GO) run ./cmd/loadtest -quick -gateway-env GOGC=100 -out benchmarks/gogc100

clean:
	rm -rf bin
