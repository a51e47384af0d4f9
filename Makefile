# Porthole build entry points. `make check` is what CI runs (.ci/run).
GO       ?= go
FUZZTIME ?= 5s
BIN      := bin/porthole
# The version --version prints: git describe (v1.2.0-3-gabc1234-dirty, or the
# commit alone before the first tag), "dev" outside a git checkout.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)

.PHONY: all deps build check fmt-check vet staticcheck test fuzz bench-vet bench bench-quick bench-exits bench-gui run clean dist-deps dist dist-check

all: build

deps:
	bash build/deps.sh

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) .
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/porthole-exit ./cmd/porthole-exit

check: deps fmt-check vet staticcheck test fuzz bench-vet

fmt-check:
	@out="$$(gofmt -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# Windows and macOS cannot be run here: their code is at least compiled
# and vetted (the GUI's cgo parts excepted, once they exist).
vet:
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./app/... ./core/... ./cmd/... ./internal/pprofserver/
	GOOS=darwin $(GO) vet ./app/... ./core/... ./cmd/... ./internal/pprofserver/

# staticcheck (honnef.co/go/tools) at a pinned version, fetched by `go run`
# so go.mod does not carry it. The packages that build for every OS run as
# one matrix: its findings are merged, so code only Windows or macOS uses is
# not "unused" on Linux. The GUI and the test helpers are checked on Linux
# only, as in vet; the bench is its own module.
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

staticcheck:
	printf 'linux: GOOS=linux\nwindows: GOOS=windows\ndarwin: GOOS=darwin\n' | \
		$(STATICCHECK) -matrix ./app/... ./core/... ./cmd/... ./internal/pprofserver/
	$(STATICCHECK) . ./ui/... ./internal/...
	cd bench && $(STATICCHECK) ./...

test:
	$(GO) test -race -count=1 -timeout 20m ./...

fuzz:
	FUZZTIME=$(FUZZTIME) bash build/fuzz.sh

# bench/ is its own module: keep it compiling and its helpers tested.
bench-vet:
	cd bench && $(GO) vet ./...
	cd bench && $(GO) test -race -count=1 ./...

# The bench measures both binaries (built by `build`, version-stamped);
# BENCH_OUT (relative to bench/) is where report.md, report.json and
# report.png go; BENCH_FLAGS adds flags, e.g. BENCH_FLAGS="-profile out/prof".
EXIT_BIN    := bin/porthole-exit
BENCH_OUT   ?= .
BENCH_FLAGS ?=

# The cost of one program lookup comes from the Go benchmark of
# core/procinfo (it needs the package's internals), run first into a
# temporary file that the bench reads into its lookup table.
LOOKUP_BENCH = $(GO) test -run '^$$' -bench '^BenchmarkLookup$$' -benchtime $(1) -count $(2) ./core/procinfo/

bench: build
	t=$$(mktemp) && trap 'rm -f "$$t"' EXIT && $(call LOOKUP_BENCH,1s,3) >"$$t" && \
		cd bench && $(GO) run ./cmd/bench -porthole ../$(BIN) -exit ../$(EXIT_BIN) -out $(BENCH_OUT) -lookup "$$t" $(BENCH_FLAGS)

bench-quick: build
	t=$$(mktemp) && trap 'rm -f "$$t"' EXIT && $(call LOOKUP_BENCH,300ms,1) >"$$t" && \
		cd bench && $(GO) run ./cmd/bench -porthole ../$(BIN) -exit ../$(EXIT_BIN) -out $(BENCH_OUT) -quick -lookup "$$t" $(BENCH_FLAGS)

# The several-exits figures (an upstream HTTP proxy exit against the same
# proxy used directly; failover time over 20 kills) into bench/exits-report.md.
# Needs tinyproxy (build/deps.sh).
bench-exits: build
	cd bench && $(GO) run ./cmd/bench -porthole ../$(BIN) -exit ../$(EXIT_BIN) -out $(BENCH_OUT) -only exits $(BENCH_FLAGS)

# CPU of the GUI process under Xvfb with 1,000 live connections, beside the
# same proxy without a GUI (ui/gui_cpu_test.go), into bench/gui-report.md.
bench-gui: deps
	PORTHOLE_GUI_BENCH=1 PORTHOLE_GUI_BENCH_OUT=$(CURDIR)/bench/gui-report.md \
		$(GO) test -count=1 -run '^TestGUICPU$$' -v ./ui/

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
