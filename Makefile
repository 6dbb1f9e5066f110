# sluice: `make demo` and `make test` work on a fresh Debian 12 machine as root.
SHELL := /bin/bash
# rustup installs into ~/.cargo/bin; deps installs it there when there is no cargo at all.
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo
DEB_PACKAGES := dpdk dpdk-dev libdpdk-dev libclang-dev clang pkg-config libpcap-dev \
	python3-scapy python3-prometheus-client python3-matplotlib python3-pip lua5.4 tshark iproute2 iputils-ping curl socat valgrind ethtool \
	prometheus tmux bird2 postgresql dnsmasq-base bind9-dnsutils \
	podman runc podman-compose debootstrap haproxy nftables wrk
FUZZ_SECONDS ?= 15
# make fuzz: executions per target (libFuzzer -runs); FUZZ_TARGETS="a b" runs only those.
FUZZ_RUNS ?= 10000000
FUZZ_TARGETS ?=
# make soak: how long (SOAK_RATE=pps in the environment fixes the rate; default half the measured capacity).
SOAK_SECONDS ?= 1800
# make install: where things go. Units in $(PREFIX)/lib/systemd/system, which systemd reads for
# both /usr/local and /usr; the config stays in /etc whatever the prefix.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec/sluice
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR ?= $(PREFIX)/share/doc/sluice
SYSCONFDIR ?= /etc
SLUICE_BIN ?= $(or $(CARGO_TARGET_DIR),target)/release/sluice
DOCKER_TAG ?= sluice:latest
DOCKER_BASE ?= debian:12

.PHONY: all deps build release demo test lint unit fuzz-smoke fuzz soak e2e bench docker install uninstall clean

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
	  case " $$missing " in *" postgresql "*) (systemctl disable --now postgresql || service postgresql stop; \
	    update-rc.d postgresql disable) >>/tmp/sluice-apt.log 2>&1 || true;; esac; \
	  case " $$missing " in *" podman "*) (systemctl disable --now podman.socket podman-restart.service \
	    podman-auto-update.timer) >>/tmp/sluice-apt.log 2>&1 || true;; esac; \
	  case " $$missing " in *" haproxy "*) (systemctl disable --now haproxy || service haproxy stop; \
	    update-rc.d haproxy disable) >>/tmp/sluice-apt.log 2>&1 || true;; esac; \
	  case " $$missing " in *" bird2 "*) (systemctl disable --now bird || service bird stop; \
	    update-rc.d bird disable) >>/tmp/sluice-apt.log 2>&1 || true;; esac; \
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
	$(CARGO) test -p dataplane --features static-dpdk --test dpdk_eal_ring --test dpdk_runtime --test dpdk_tap_offload \
	  --test dpdk_af_xdp
	# The RCU protocol under loom's model checker (its own target dir: --cfg loom rebuilds deps).
	RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=target/loom \
	  $(CARGO) test -p dataplane --lib --release rcu::loom_tests
	# bench/run.sh's scenario wiring against stand-in generator and testpmd (no DPDK).
	python3 bench/tests/test_run_sh.py

fuzz-smoke: deps
	@bash tests/fuzz-smoke.sh $(FUZZ_SECONDS)

fuzz: deps
	@FUZZ_RUNS="$(FUZZ_RUNS)" FUZZ_TARGETS="$(FUZZ_TARGETS)" bash tests/fuzz-long.sh

soak: release
	@SOAK_SECONDS="$(SOAK_SECONDS)" bash tests/soak.sh

e2e: release
	@bash tests/run-e2e.sh

test: lint unit fuzz-smoke e2e

bench: release
	@bash bench/callgrind.sh
	@bash bench/run.sh
	@bash bench/peers.sh
	@bash bench/maglev.sh
	@bash bench/floor.sh

# The image from source (many minutes): DOCKER_TAG (sluice:latest), DOCKER_BASE (debian:12, or
# `local` for one made with debootstrap where no registry can be pulled from). make test builds
# the image from the release binary instead (tests/e2e/44-container.sh).
docker: deps
	@DOCKER_TAG=$(DOCKER_TAG) DOCKER_BASE=$(DOCKER_BASE) bash docker/build.sh

# Installs what `make release` built (it does not build: run that as your user first). An
# existing config or /etc/default/sluice is kept. With DESTDIR (packaging) systemd is not told.
install:
	@test -x $(SLUICE_BIN) || { echo "no $(SLUICE_BIN): run 'make release' first"; exit 1; }
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) \
	  $(DESTDIR)$(SYSCONFDIR)/sluice $(DESTDIR)$(SYSCONFDIR)/default
	install -m 0755 $(SLUICE_BIN) $(DESTDIR)$(BINDIR)/sluice
	install -m 0755 deploy/systemd/sluice-hugepages $(DESTDIR)$(LIBEXECDIR)/sluice-hugepages
	install -m 0644 deploy/systemd/README.md $(DESTDIR)$(DOCDIR)/systemd.md
	for u in sluice.service sluice-hugepages.service; do \
	  sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' \
	      -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' \
	      deploy/systemd/$$u >$(DESTDIR)$(UNITDIR)/$$u.tmp && \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp && mv $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/sluice/sluice.yaml ]; then \
	  echo "kept $(DESTDIR)$(SYSCONFDIR)/sluice/sluice.yaml"; \
	else install -m 0640 sluice.example.yaml $(DESTDIR)$(SYSCONFDIR)/sluice/sluice.yaml && \
	  echo "installed $(DESTDIR)$(SYSCONFDIR)/sluice/sluice.yaml: edit it for this machine (sluice check -c)"; fi
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/default/sluice ]; then \
	  echo "kept $(DESTDIR)$(SYSCONFDIR)/default/sluice"; \
	else install -m 0644 deploy/systemd/sluice.default $(DESTDIR)$(SYSCONFDIR)/default/sluice; fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

# Removes what install put in place, except the config and /etc/default/sluice.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/sluice $(DESTDIR)$(LIBEXECDIR)/sluice-hugepages \
	  $(DESTDIR)$(UNITDIR)/sluice.service $(DESTDIR)$(UNITDIR)/sluice-hugepages.service \
	  $(DESTDIR)$(DOCDIR)/systemd.md
	-rmdir $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(DOCDIR) 2>/dev/null
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

clean:
	$(CARGO) clean
