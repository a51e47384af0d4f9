# Porthole build entry points. `make check` is what CI runs (.ci/run).
GO       ?= go
FUZZTIME ?= 5s
BIN      := bin/porthole

.PHONY: all deps build check fmt-check vet test fuzz bench-vet bench bench-quick run clean

all: build

deps:
	bash build/deps.sh

build:
	$(GO) build -o $(BIN) .
	CGO_ENABLED=0 $(GO) build -o bin/porthole-exit ./cmd/porthole-exit

check: deps fmt-check vet test fuzz bench-vet

fmt-check:
	@out="$$(gofmt -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# Windows and macOS cannot be run here: their code is at least compiled
# and vetted (the GUI's cgo parts excepted, once they exist).
vet:
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./app/... ./core/... ./cmd/...
	GOOS=darwin $(GO) vet ./app/... ./core/... ./cmd/...

test:
	$(GO) test -race -count=1 -timeout 20m ./...

fuzz:
	FUZZTIME=$(FUZZTIME) bash build/fuzz.sh

# bench/ is its own module; keep it compiling.
bench-vet:
	cd bench && $(GO) vet ./...

# The bench measures both binaries; BENCH_OUT (relative to bench/) is
# where report.md and report.json go.
EXIT_BIN  := bin/porthole-exit
BENCH_OUT ?= .

bench: build
	$(GO) build -o $(EXIT_BIN) ./cmd/porthole-exit
	cd bench && $(GO) run ./cmd/bench -porthole ../$(BIN) -exit ../$(EXIT_BIN) -out $(BENCH_OUT)

bench-quick: build
	$(GO) build -o $(EXIT_BIN) ./cmd/porthole-exit
	cd bench && $(GO) run ./cmd/bench -porthole ../$(BIN) -exit ../$(EXIT_BIN) -out $(BENCH_OUT) -quick

run: deps
	$(GO) run .

clean:
	rm -rf bin
