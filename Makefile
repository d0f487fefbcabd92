# aod — see README.md. Every target works from a clean clone; `make setup` installs
# what the build, lint and tests need (as root, on Debian).

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X github.com/linuxdiag/aod/internal/version.Version=$(VERSION) \
             -X github.com/linuxdiag/aod/internal/version.Commit=$(COMMIT)
STATICCHECK_VERSION := v0.8.2
APT_PACKAGES := clang llvm libbpf-dev bpftool zstd tcpdump trace-cmd prometheus cpio

.PHONY: all setup build run test unit fuzz lint generate clean otelcol otelcol-ocb e2e

all: build

## setup: install the Debian packages and Go tools the build, lint and tests use.
setup:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES)
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GO) mod download

## build: a static aod binary in bin/.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/aod ./cmd/aod

## run: the agent on its embedded default config (needs root for BPF).
run: build
	./bin/aod run

## test: lint, every unit test (BPF tests need root), then each fuzz target briefly.
test: lint unit fuzz

unit:
	$(GO) test -count=1 ./...

FUZZTIME ?= 20s
fuzz:
	@set -e; grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | sort | \
	while IFS=: read -r file fn; do \
		name=$${fn#func }; pkg=./$$(dirname "$${file#./}"); \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s "$$pkg"; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$$($(GO) env GOPATH)/bin/staticcheck ./...

## generate: rebuild generated code (BPF objects via bpf2go, the NTSTATUS table).
generate:
	@command -v clang >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang llvm libbpf-dev)
	$(GO) generate ./...

clean:
	rm -rf bin

## otelcol: the collector distribution with aod's components (cmd/otelcol-aod).
otelcol:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/otelcol-aod ./cmd/otelcol-aod

## otelcol-ocb: the same distribution built by the collector builder from builder-config.yaml.
OCB_VERSION := v0.165.0
otelcol-ocb:
	CGO_ENABLED=0 $(GO) run go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION) --config builder-config.yaml
