# aod — see README.md. Every target works from a clean clone; `make setup` installs
# what the build, lint and tests need (as root, on Debian).

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X github.com/linuxdiag/aod/internal/version.Version=$(VERSION) \
             -X github.com/linuxdiag/aod/internal/version.Commit=$(COMMIT)
STATICCHECK_VERSION := v0.8.2
# The object stores the upload tests run against (internal/upload/storetest): Azurite
# (Azure Blob Storage's emulator; 3.35.0 runs on Debian's Node 20) and versitygw (an
# S3 gateway over a local directory that honours conditional creates). npm comes with the
# nodejs package the machine's apt sources give (Node 20, which conflicts with Debian's npm).
AZURITE_VERSION   := 3.35.0
VERSITYGW_VERSION := v1.8.0
APT_PACKAGES := clang llvm libbpf-dev bpftool linux-libc-dev zstd tcpdump trace-cmd iproute2 prometheus \
                qemu-system-x86 mmdebstrap cpio kmod nodejs \
                help2man lintian rpm systemd

.PHONY: all setup build run test unit fuzz lint generate clean otelcol otelcol-ocb collector e2e install bench package

all: build

## setup: install the Debian packages and Go tools the build, lint and tests use.
setup:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES)
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	npm install -g --no-fund --no-audit azurite@$(AZURITE_VERSION)
	$(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)
	$(GO) mod download

## build: a static aod binary in bin/.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/aod ./cmd/aod

## run: the agent on its embedded default config (needs root for BPF).
run: build
	./bin/aod run

## test: what CI runs: lint, every unit test (the BPF tests need root), each fuzz
## target (a fixed count of inputs), the collector distribution from its ocb manifest, and the
## end-to-end test in qemu guests.
test: lint unit fuzz collector e2e

unit:
	$(GO) test -count=1 ./...
	@# Every benchmark once, so that one which no longer runs fails here and not
	@# when someone needs its figures (figures are read, never asserted).
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x ./...

# A count, not a duration: Go 1.26's fuzz coordinator can fail a duration-bound run
# with a spurious "context deadline exceeded" (go.dev/issue/75804, fixed in Go 1.27).
# About 10 to 20 s per target on CI's machine.
FUZZTIME ?= 300000x
fuzz:
	@set -e; git ls-files '*_test.go' | xargs grep -Ho '^func Fuzz[A-Za-z0-9_]*' | sort | \
	while IFS=: read -r file fn; do \
		name=$${fn#func }; pkg=./$$(dirname "$${file#./}"); \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s "$$pkg"; \
	done

# lint also builds and vets for macOS: the module claims to build off Linux (the kernel
# parts are stubs there), and only a build for another OS keeps that true.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/...
	GOOS=darwin $(GO) build ./...
	GOOS=darwin $(GO) vet ./...
	GOOS=darwin $(GO) vet -tags e2e ./test/e2e/...
	$$($(GO) env GOPATH)/bin/staticcheck ./...
	$$($(GO) env GOPATH)/bin/staticcheck -tags e2e ./test/e2e/...

## generate: rebuild generated code (BPF objects via bpf2go, the NTSTATUS table).
generate:
	@command -v clang >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang llvm libbpf-dev)
	$(GO) generate ./...

clean:
	rm -rf bin dist

## otelcol: the collector distribution with aod's components (cmd/otelcol-aod).
otelcol:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/otelcol-aod ./cmd/otelcol-aod

## otelcol-ocb: the same distribution built by the collector builder from builder-config.yaml.
OCB_VERSION := v0.165.0
otelcol-ocb:
	mkdir -p dist
	CGO_ENABLED=0 $(GO) run go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION) --config builder-config.yaml

## collector: the ocb-built distribution loads and validates the example configuration.
collector: otelcol-ocb
	OTLP_ENDPOINT=localhost:4317 dist/otelcol-aod/otelcol-aod validate --config otel-collector-example.yaml

## e2e: real SMB traffic from the kernel's cifs client to Samba, and NFS (v3, v4.2)
## to the guest's kernel NFS server, in qemu guests (Debian kernels 5.10, 6.1, 6.12 and
## the newest of trixie-backports and sid), with the agent inside; then the baseline
## again with the fallback probes (fexit) in place of the request tracepoints, on the
## kernels with the cifs module's BTF it needs (not 5.10). See test/e2e/README.md.
e2e:
	$(GO) test -tags e2e -count=1 -v -timeout 80m ./test/e2e/
	E2E_FALLBACK=1 E2E_KERNELS="6.1 6.12 newest" E2E_SCENARIOS=baseline $(GO) test -tags e2e -count=1 -v -timeout 20m -run TestE2E ./test/e2e/

## bench: what aod costs (kernel probes next to minimal and floor probes, agent CPU at 10k and
## 100k requests/s, memory, export payload, replay throughput, anomaly to bundle), as
## `aod-bench <name> <value> <unit>` lines, also written with the machine's description
## to $(BENCH_RESULTS). Needs root (BPF); about 4 minutes; figures are read, never
## asserted, so it is not part of `make test`. See bench/README.md.
BENCH_RESULTS ?= bench-results.txt
bench:
	$(GO) build -o bin/aod-bench ./bench
	./bin/aod-bench -results $(BENCH_RESULTS)

## install: the agent, its configuration (kept if present) and the systemd unit.
PREFIX  ?= /usr/local
DESTDIR ?=
install: build
	install -D -m 0755 bin/aod $(DESTDIR)$(PREFIX)/bin/aod
	install -d -m 0755 $(DESTDIR)/etc/aod
	test -e $(DESTDIR)/etc/aod/aod.yaml || install -m 0644 configs/aod.yaml $(DESTDIR)/etc/aod/aod.yaml
	install -d -m 0755 $(DESTDIR)/etc/systemd/system
	sed 's|^ExecStart=/usr/bin/aod|ExecStart=$(PREFIX)/bin/aod|' packaging/systemd/aod.service \
		> $(DESTDIR)/etc/systemd/system/aod.service
	@echo "installed; start with: systemctl daemon-reload && systemctl enable --now aod"

## package: dist/aod_<version>-1_<arch>.deb and dist/aod-<version>-1.<arch>.rpm from the
## static binary of `make build`, with nfpm (pinned in internal/tools/nfpm). See
## docs/packaging.md; the package test (make unit) checks what they hold.
PKG_VERSION    ?= $(shell packaging/version.sh)
PKG_MAINTAINER ?= aod maintainers <aod@linuxdiag.invalid>
PKG_GOARCH     ?= $(shell $(GO) env GOARCH)
# Dates inside the packages (file times, man page, changelog) are the commit's, so
# one commit builds the same packages.
PKG_EPOCH      := $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
package: build
	rm -rf dist/pkg && mkdir -p dist/pkg
	$(GO) build -C internal/tools/nfpm -o $(CURDIR)/bin/nfpm github.com/goreleaser/nfpm/v2/cmd/nfpm
	cp packaging/systemd/aod.service dist/pkg/aod.service
	SOURCE_DATE_EPOCH=$(PKG_EPOCH) help2man --no-info --no-discard-stderr --version-string='$(PKG_VERSION)' --section 1 \
		--name 'always-on diagnostics for the Linux SMB and NFS clients' --output dist/pkg/aod.1 bin/aod
	gzip -9n dist/pkg/aod.1
	printf 'aod (%s-1) unstable; urgency=medium\n\n  * Built from git commit %s.\n\n -- %s  %s\n' \
		'$(PKG_VERSION)' '$(COMMIT)' '$(PKG_MAINTAINER)' \
		"$$(date -R -u -d @$(PKG_EPOCH))" | gzip -9n > dist/pkg/changelog.Debian.gz
	rm -f dist/*.deb dist/*.rpm
	for p in deb rpm; do \
		GOARCH='$(PKG_GOARCH)' AOD_PKG_VERSION='$(PKG_VERSION)' AOD_PKG_MAINTAINER='$(PKG_MAINTAINER)' \
		SOURCE_DATE_EPOCH=$(PKG_EPOCH) \
		bin/nfpm package --config packaging/nfpm.yaml --packager $$p --target dist/ || exit 1; \
	done
	@ls -l dist/*.deb dist/*.rpm
