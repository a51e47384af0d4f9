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

check: deps fmt-check vet test fuzz bench-vet

fmt-check:
	@out="$$(gofmt -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

test:
	$(GO) test -race -count=1 -timeout 20m ./...

fuzz:
	FUZZTIME=$(FUZZTIME) bash build/fuzz.sh

# bench/ is its own module; keep it compiling.
bench-vet:
	cd bench && $(GO) vet ./...

bench: build
	cd bench && $(GO) run ./cmd/bench -porthole ../$(BIN) -out .

bench-quick: build
	cd bench && $(GO) run ./cmd/bench -porthole ../$(BIN) -out . -quick

run: deps
	$(GO) run .

clean:
	rm -rf bin
