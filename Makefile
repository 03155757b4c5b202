# Kai — see README.md. `make test` is what CI runs (as root).
GO        ?= go
TOOLS     := $(CURDIR)/.tools
LINT      := $(TOOLS)/golangci-lint
LINT_VERSION := v2.6.2
CMDS      := kai-dpu kaictl kai-lab kai-host kai-cni
# Reference CNI plugins the lab chains kai-cni after (versions pinned in go.mod).
CNI_PLUGINS := github.com/containernetworking/plugins/plugins/main/host-device github.com/containernetworking/plugins/plugins/ipam/static
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
export PATH := $(TOOLS):$(PATH)

.PHONY: all build test unit integration generate check-generate lint bench bench-quick demo chaos clean

all: build

build: ## binaries into bin/, and kai-dpu for the DPU's Arm cores into bin/linux-arm64/
	@mkdir -p bin bin/linux-arm64
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/ $(addprefix ./cmd/,$(CMDS))
	$(GO) build -o bin/ $(CNI_PLUGINS)
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -ldflags '$(LDFLAGS)' -o bin/linux-arm64/ ./cmd/kai-dpu ./cmd/kaictl

test: check-generate lint ## everything CI checks: generated code, lint, unit and integration tests
	# One package at a time: the integration packages build real topologies and
	# check zero loss with 1 s ping deadlines; they must not starve each other.
	$(GO) test -count=1 -p 1 -timeout 25m ./...

unit: ## tests that need neither root nor OVS
	$(GO) test -count=1 -short ./...

generate: ## protobuf (protoc + pinned plugins from go.mod) and OVSDB models (libovsdb modelgen)
	@mkdir -p $(TOOLS)
	$(GO) build -o $(TOOLS)/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	$(GO) build -o $(TOOLS)/protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc
	protoc -I api --go_out=api --go_opt=paths=source_relative \
		--go-grpc_out=api --go-grpc_opt=paths=source_relative api/kai/v1/kai.proto api/kai/v1/host.proto
	cd offload/ovs/vswitchd && $(GO) tool modelgen -p vswitchd -o . vswitch.ovsschema

check-generate: generate ## fails if generated code differs from what is committed
	@git diff --exit-code -- api offload/ovs/vswitchd || { echo "generated code is stale: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- api offload/ovs/vswitchd)" || { git status --porcelain -- api offload/ovs/vswitchd; echo "untracked generated files"; exit 1; }

$(LINT):
	GOBIN=$(TOOLS) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(LINT_VERSION)

lint: $(LINT) ## golangci-lint (pinned) incl. gofmt/goimports, and go vet
	$(GO) vet ./...
	$(LINT) run ./...

# The lab's binaries for this machine only (no arm64 cross-build).
BENCH_BINS = $(GO) build -ldflags '$(LDFLAGS)' -o bin/ $(addprefix ./cmd/,$(CMDS)) && $(GO) build -o bin/ $(CNI_PLUGINS)

bench: ## benchmarks (root, < 10 min): Go micro-benchmark, then kai-lab bench -> bench/results/latest.{json,md}
	@mkdir -p bin
	$(BENCH_BINS)
	$(GO) test -run '^$$' -bench . -benchtime 20x -count=1 ./offload/ovs/ ./dpu/desired/
	./bin/kai-lab bench --out bench/results

bench-quick: ## kai-lab bench with 10k routes and fewer samples (root, < 2 min)
	@mkdir -p bin
	$(BENCH_BINS)
	./bin/kai-lab bench --quick --out bench/results

chaos: build ## 1000 random faults against a lab with two route reflectors (root); summary in docs/resilience.md
	@[ "$$(id -u)" = 0 ] || { echo "make chaos needs root (network namespaces, OVS): sudo make chaos"; exit 1; }
	./bin/kai-lab chaos --seed $(or $(SEED),1) --events $(or $(EVENTS),1000) --legacy-servers 1

demo: ## the lab: two DPUs, a route reflector, pods on two networks, real packets (root)
	@[ "$$(id -u)" = 0 ] || { echo "make demo needs root (network namespaces, OVS): sudo make demo"; exit 1; }
	./hack/install-prereqs.sh
	$(MAKE) --no-print-directory build
	./hack/demo.sh

clean:
	rm -rf bin
