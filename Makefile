# kctr: the set-up commands a newcomer needs. `make demo` and `make test`
# work on a fresh Debian 12 machine as root; everything they need is
# installed by `make deps`, which is idempotent.

SHELL := /bin/bash
GO ?= go
TOOLS := $(CURDIR)/.tools
TOOLS_BIN := $(TOOLS)/bin
BIN := $(CURDIR)/bin
CONTAINERD_VERSION := v2.4.2
CRI_TOOLS_VERSION := v1.37.0
APT_PACKAGES := containerd runc containernetworking-plugins busybox-static docker-registry iproute2 iptables skopeo
PROGRAMS := $(notdir $(wildcard cmd/*))
FUZZTIME ?= 20000x
FUZZMINIMIZETIME ?= 200x

export PATH := $(PATH):/usr/local/go/bin:/usr/sbin:/sbin

.PHONY: all deps apt-deps go-tools build test test-unit test-integration fuzz demo bench lint clean

all: build

deps: apt-deps go-tools

# apt-get update only when something is missing: it is the slow part.
apt-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# containerd 2.x, its shim and ctr go into .tools/bin, never onto the system
# PATH: Debian's containerd 1.6 stays the default daemon and shim.
go-tools: $(TOOLS_BIN)/containerd $(TOOLS_BIN)/containerd-shim-runc-v2 $(TOOLS_BIN)/ctr $(TOOLS_BIN)/crictl $(TOOLS_BIN)/critest

$(TOOLS_BIN)/containerd $(TOOLS_BIN)/containerd-shim-runc-v2 $(TOOLS_BIN)/ctr:
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) $(GO) install github.com/containerd/containerd/v2/cmd/$(notdir $@)@$(CONTAINERD_VERSION)

$(TOOLS_BIN)/crictl:
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) $(GO) install sigs.k8s.io/cri-tools/cmd/crictl@$(CRI_TOOLS_VERSION)

# critest's main package has only test files, so `go install` refuses it:
# build the test binary inside the downloaded module instead.
$(TOOLS_BIN)/critest:
	@mkdir -p $(TOOLS_BIN)
	dir=$$($(GO) mod download -json sigs.k8s.io/cri-tools@$(CRI_TOOLS_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	cd "$$dir" && CGO_ENABLED=0 $(GO) test -c -o $@ ./cmd/critest

build:
	@mkdir -p $(BIN)
	# Static binaries: kctr bind-mounts itself into containers for run --init.
	# No symbol table or DWARF (-s -w): a third smaller, and every CLI call
	# and every container's log writer starts a little sooner.
	CGO_ENABLED=0 $(GO) build -ldflags='-s -w' -o $(BIN)/ $(addprefix ./cmd/,$(PROGRAMS))

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

# The whole suite: unit tests, integration tests against Debian's containerd
# 1.6 and against containerd 2.4, and short fuzz runs. CI=true turns missing
# dependencies into failures instead of skips.
test: deps build lint
	./hack/test.sh

test-unit:
	$(GO) test -short ./...

fuzz:
	for target in FuzzParseReference FuzzHostsFile; do \
		$(GO) test -short -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) ./images || exit 1; \
	done

# The main job: a private containerd and registry, an offline image pushed,
# pulled and run with kctr, then everything cleaned up.
demo: deps build
	$(GO) run ./hack/demo --bin $(BIN)

# Each benchmark measures our tool and its peer in the same run and prints
# medians and ratios; BENCH_CONTAINERD picks the daemon (1.6 or 2.4).
BENCH_CONTAINERD ?= 1.6
bench: deps build
	$(GO) run ./bench/pull --bin $(BIN) --containerd $(BENCH_CONTAINERD)
	$(GO) run ./bench/pull --bin $(BIN) --containerd $(BENCH_CONTAINERD) --content text
	$(GO) run ./bench/run --bin $(BIN) --containerd $(BENCH_CONTAINERD)
	$(GO) run ./bench/kcrictl --bin $(BIN) --containerd $(BENCH_CONTAINERD) --crictl $(TOOLS_BIN)/crictl
	$(GO) run ./bench/pod-start --bin $(BIN) --containerd $(BENCH_CONTAINERD)
	$(GO) run ./bench/kubelet-lite --bin $(BIN) --containerd $(BENCH_CONTAINERD)
	# critest against containerd's CRI and kcrid, on 1.6 then 2.4.
	$(GO) run ./bench/critest-compare --bin $(BIN)

clean:
	rm -rf $(BIN)
