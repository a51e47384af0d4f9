# Porthole build entry points. `make check` is what CI runs (.ci/run).
GO       ?= go
FUZZTIME ?= 5s
BIN      := bin/porthole
# The version --version prints: git describe (v1.2.0-3-gabc1234-dirty, or the
# commit alone before the first tag), "dev" outside a git checkout.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)

.PHONY: all deps build check fmt-check vet test fuzz bench-vet bench bench-quick run clean dist-deps dist dist-check

all: build

deps:
	bash build/deps.sh

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) .
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/porthole-exit ./cmd/porthole-exit

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

# Installable artifacts in dist/ (Linux tar.xz and .deb, Windows exe and
# installer, porthole-exit for three platforms, SHA256SUMS), then their
# checks; see build/dist.sh. PORTHOLE_SIGN_SELF=1 signs the Windows files
# with a throwaway certificate (CI), PORTHOLE_SIGN_PKCS12=file with a real one.
dist-deps:
	bash build/deps.sh dist

dist: dist-deps
	VERSION='$(VERSION)' GO='$(GO)' bash build/dist.sh

# The checks alone, on an existing dist/.
dist-check:
	VERSION='$(VERSION)' bash build/dist-check.sh

run: deps
	$(GO) run .

clean:
	rm -rf bin dist
