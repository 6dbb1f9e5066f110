# sluice: `make demo` and `make test` work on a fresh Debian 12 machine as root.
SHELL := /bin/bash
# rustup installs into ~/.cargo/bin; deps installs it there when there is no cargo at all.
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo
DEB_PACKAGES := dpdk dpdk-dev libdpdk-dev libclang-dev clang pkg-config libpcap-dev \
	python3-scapy python3-prometheus-client python3-matplotlib lua5.4 tshark iproute2 iputils-ping curl socat valgrind ethtool \
	prometheus
FUZZ_SECONDS ?= 15

.PHONY: all deps build release demo test lint unit fuzz-smoke fuzz e2e bench clean

all: build

# Install only what is missing; silent when everything is there.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  (apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing) >/tmp/sluice-apt.log 2>&1 \
	    || { cat /tmp/sluice-apt.log; exit 1; }; \
	  case " $$missing " in *" prometheus "*) (systemctl disable --now prometheus || service prometheus stop; \
	    update-rc.d prometheus disable) >>/tmp/sluice-apt.log 2>&1 || true;; esac; \
	fi
	@command -v $(CARGO) >/dev/null 2>&1 || { \
	  echo "no cargo: installing Rust (stable, with rustfmt and clippy) with rustup into ~/.cargo"; \
	  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile default >/tmp/sluice-rustup.log 2>&1 \
	    || { cat /tmp/sluice-rustup.log; echo "could not install Rust: see https://rustup.rs, then rerun make"; exit 1; }; }

build: deps
	$(CARGO) build --workspace --all-targets

release: deps
	$(CARGO) build --release -p sluice -p sluice-bench

demo: release
	./target/release/sluice demo --seconds 10

lint: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit: deps
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc
	# The DPDK tests again with DPDK linked statically (static-dpdk: whole-archive drivers).
	$(CARGO) test -p dataplane --features static-dpdk --test dpdk_eal_ring --test dpdk_runtime
	# The RCU protocol under loom's model checker (its own target dir: --cfg loom rebuilds deps).
	RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=target/loom \
	  $(CARGO) test -p dataplane --lib --release rcu::loom_tests

fuzz-smoke: deps
	@bash tests/fuzz-smoke.sh $(FUZZ_SECONDS)

fuzz: deps
	@bash tests/fuzz-smoke.sh $${FUZZ_SECONDS:-600}

e2e: release
	@bash tests/run-e2e.sh

test: lint unit fuzz-smoke e2e

bench: release
	@bash bench/run.sh

clean:
	$(CARGO) clean
