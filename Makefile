# xvs — the two commands that matter are `make demo` and `make test`.
#
#   make build        bin/xvsd, bin/xvsctl, bin/xvs-cni, bin/xvs-pktgen (those that exist)
#   make test         install missing test tools, build kube-apiserver once,
#                     go vet, unit + end-to-end tests
#   make demo         build, bring a lab up, ping and iperf3 through xvsd, show ports
#                     and counters, then a two-node VXLAN lab; tear down (always,
#                     even on failure)
#   make bench        the perf harness, full set: kernel vs xvsd vs XDP_REDIRECT,
#                     pod-to-pod pps, latency, iperf3 TCP, two nodes routed and
#                     through VXLAN, ring layer (< 15 min)
#   make bench-quick  the same, fewer points (< 2 min)
#   make bench-go     Go micro-benchmarks (pipeline, FIB, rings, encap)
#   make lint         gofmt -l and go vet
#   make kube-apiserver  build kube-apiserver (k8s.io/kubernetes, pinned in
#                     e2e/kubeapi/apiserver) once into $(XVS_CACHE), for the
#                     tests that need a real Kubernetes API
#   make generate     rebuild the BPF objects from xdpprog/bpf/*.c (clang, libbpf-dev)
#   make clean        remove bin/
#
# Tests and the demo need root (network namespaces); without it the
# end-to-end tests skip and say why.

SHELL        := /usr/bin/env bash
GO           ?= go
BIN          ?= bin
TEST_TIMEOUT ?= 15m
# Things built once per machine (kube-apiserver) are kept here.
XVS_CACHE    ?= $(HOME)/.cache/xvs
KUBE_VERSION := v1.37.2
KUBE_APISERVER := $(XVS_CACHE)/kube-apiserver-$(KUBE_VERSION)
# The reference CNI plugins the chaining tests run (portmap, bandwidth,
# tuning, loopback), built from the module proxy: Debian's 1.1.1 speaks
# spec 1.0.0 at most and its portmap fails CHECK of a dual-stack pod.
# Keep in step with e2e.RefPluginsVersion.
CNI_PLUGINS_VERSION := v1.10.0
CNI_PLUGINS  := $(XVS_CACHE)/cni-plugins-$(CNI_PLUGINS_VERSION)
CNI_PLUGINS_PKGS := meta/portmap meta/bandwidth meta/tuning main/loopback
# Commands that exist: every cmd/NAME holding Go files.
CMDS         := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard cmd/*/*.go)))))
# tool:Debian package pairs the tests and the demo run.
TOOLS        := ip:iproute2 ss:iproute2 ping:iputils-ping iperf3:iperf3 tcpdump:tcpdump ethtool:ethtool
TOOLS        += dpdk-testpmd:dpdk-dev
APT_PACKAGES := iproute2 iputils-ping iperf3 tcpdump ethtool
APT_PACKAGES += dpdk-dev librte-net-memif23
TOOLS        += bird:bird2 birdc:bird2
APT_PACKAGES += bird2
TOOLS        += etcd:etcd-server
APT_PACKAGES += etcd-server
TOOLS        += /usr/lib/cni/portmap:containernetworking-plugins iptables-save:iptables
APT_PACKAGES += containernetworking-plugins iptables

.PHONY: kube-apiserver cni-plugins bench-go all build test demo bench bench-quick lint clean deps generate

all: build

build:
	@mkdir -p $(BIN)
	@set -e; for c in $(CMDS); do \
		echo "go build -o $(BIN)/$$c ./cmd/$$c"; \
		$(GO) build -o $(BIN)/$$c ./cmd/$$c; \
	done

# deps installs the test tools, only when one is missing.
deps:
	@missing=""; for pair in $(TOOLS); do \
		command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair%%:*}"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "missing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "not root: cannot install $(APT_PACKAGES)" >&2; exit 1; fi; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(APT_PACKAGES); \
	fi

# test prints every package result, every skip with its reason, and a
# count of tests run, so CI can see that real tests ran; on failure it
# prints the whole log.
test: deps kube-apiserver cni-plugins
	$(GO) vet ./...
	@mkdir -p $(BIN)
	@echo "go test -count=1 -timeout $(TEST_TIMEOUT) -v ./...  (log: $(BIN)/test.log)"
	@set +e; XVS_KUBE_APISERVER=$(KUBE_APISERVER) XVS_CNI_PLUGINS=$(CNI_PLUGINS) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -v ./... > $(BIN)/test.log 2>&1; rc=$$?; \
	if [ $$rc != 0 ]; then cat $(BIN)/test.log; echo; fi; \
	echo "==== summary"; \
	grep -E '^(ok|FAIL|panic:|\?|--- FAIL)' $(BIN)/test.log; \
	awk '/^=== (RUN|CONT|NAME)/ {why = ""; next} \
		/^ *--- SKIP/ {print; if (why != "") print "        " why; why = ""; next} \
		/^ +[^ -]/ {if (why == "") {why = $$0; sub(/^ +/, "", why); why = substr(why, 1, 200)}}' $(BIN)/test.log; \
	pass=$$(grep -cE '^ *--- PASS' $(BIN)/test.log); \
	skip=$$(grep -cE '^ *--- SKIP' $(BIN)/test.log); \
	fail=$$(grep -cE '^ *--- FAIL' $(BIN)/test.log); \
	echo "go test exit $$rc; counts include subtests"; \
	echo "tests: $$pass passed, $$fail failed, $$skip skipped"; \
	exit $$rc

demo: deps build
	BIN=$(BIN) ./lab/demo.sh

# The perf harness: pod-to-pod through xvsd, the kernel and an XDP_REDIRECT
# ceiling, alternating A B A B; JSON, Markdown and SVG under out/bench.
bench: build
	$(GO) run ./perf/cmd/xvs-bench -full -out out/bench -xvsd $(BIN)/xvsd

bench-quick: build
	$(GO) run ./perf/cmd/xvs-bench -quick -out out/bench -xvsd $(BIN)/xvsd

# Go micro-benchmarks (pipeline, FIB, rings, encap) with allocation counts.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 20ms -timeout 20m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt -l:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# generate rebuilds the committed BPF objects and their Go loaders from
# the C (bpf2go); commit what it writes. Only a change to the C needs it.
GEN_PACKAGES := clang llvm libbpf-dev linux-libc-dev
generate:
	@if ! command -v clang >/dev/null 2>&1 || ! command -v llvm-strip >/dev/null 2>&1 || [ ! -e /usr/include/bpf/bpf_helpers.h ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "not root: cannot install $(GEN_PACKAGES)" >&2; exit 1; fi; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(GEN_PACKAGES); \
	fi
	$(GO) generate ./xdpprog

clean:
	rm -rf $(BIN)

# kube-apiserver, unchanged, from its own module (so xvs never depends on
# k8s.io/kubernetes); about 9 minutes cold on 2 cores, then cached.
kube-apiserver: $(KUBE_APISERVER)

cni-plugins: $(CNI_PLUGINS)/portmap

# Built in a directory of their own, named by the version, outside the
# module (go install pkg@version needs no go.mod entry).
$(CNI_PLUGINS)/portmap:
	@mkdir -p $(CNI_PLUGINS)
	cd /tmp && GOBIN=$(CNI_PLUGINS) GOFLAGS=-mod=mod $(GO) install \
		$(foreach p,$(CNI_PLUGINS_PKGS),github.com/containernetworking/plugins/plugins/$(p)@$(CNI_PLUGINS_VERSION))

# The file name carries the version, so a fresh clone (new mtimes) does not
# rebuild it; a change of KUBE_VERSION does.
$(KUBE_APISERVER):
	@mkdir -p $(XVS_CACHE)
	cd e2e/kubeapi/apiserver && $(GO) build -trimpath \
		-ldflags "-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION)" \
		-o $(KUBE_APISERVER).tmp . && mv $(KUBE_APISERVER).tmp $(KUBE_APISERVER)
