# The two commands of the README: `make demo` and `make test`. Both install what
# is missing first (Debian packages as root, then the Python venv), so they work
# on a fresh Debian 12 machine.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Installs are quiet for `make test`; `make demo` shows their progress (a first run is slow).
APT_QUIET ?= -qq
PIP_QUIET ?= --quiet

# Debian packages the components use. Only the missing ones are installed.
DEB_PACKAGES := \
	python3-venv python3-dev gcc pkg-config \
	iproute2 iputils-ping procps e2fsprogs \
	runc busybox-static fuse3 libfuse3-dev \
	wireguard-go wireguard-tools yggdrasil \
	qemu-system-x86 redis-tools redis-server debootstrap zstd curl jq \
	postgresql chromium chromium-driver \
	linux-image-amd64 openssh-client cpio \
	caddy haproxy iperf3 wrk

.PHONY: install install-deb install-venv test lint typecheck unit fuzz demo clean

install: install-deb install-venv

install-deb:
	@missing=""; \
	for pkg in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi; \
	  $$sudo apt-get update $(APT_QUIET) && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y $(APT_QUIET) --no-install-recommends $$missing; \
	fi

install-venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) --upgrade pip
	$(PY) -m pip install $(PIP_QUIET) -e '.[dev]'
	touch $(STAMP)

lint: install-venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install-venv
	$(VENV)/bin/mypy zgrid tests

# pytest exits 5 when it collected no test; that is a failure here like any other.
# Test files run in parallel, one process per core (each file's servers stay in one process).
unit: install
	$(PY) -m pytest -n auto --dist loadfile --durations=15 --cov=zgrid --cov-report=term --cov-report=xml:coverage.xml $(PYTEST_ARGS)
	# The pure parts must stay above 90%: identity, types, the chain state machine, the zdb engine,
	# the flist format (blocks, metadata, checks, trees, image import, store routing).
	$(PY) -m coverage report --fail-under=90 --include='zgrid/identity/*,zgrid/types/*,zgrid/canonical.py,zgrid/chain/economy.py,zgrid/chain/state.py,zgrid/chain/machine.py,zgrid/chain/tables.py,zgrid/chain/domains/*,zgrid/zdb/formats.py,zgrid/zdb/entry.py,zgrid/zdb/files.py,zgrid/zdb/namespace.py,zgrid/zdb/store.py,zgrid/flist/block.py,zgrid/flist/meta.py,zgrid/flist/safety.py,zgrid/flist/tree.py,zgrid/flist/oci.py,zgrid/flist/stores/router.py,zgrid/flist/stores/url.py'

test: install lint typecheck unit

# The fuzz tests for as long as asked: FUZZ_SECONDS per target (atheris run, hypothesis
# property, schemathesis operation set), serially so each gets the whole machine, with the
# inputs run printed at the end. FUZZ_TESTS picks files (default: all of tests/fuzz).
FUZZ_SECONDS ?= 60
FUZZ_TESTS ?= tests/fuzz
fuzz: install
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(PY) -m pytest -p no:xdist -p no:cacheprovider -q $(FUZZ_TESTS) $(PYTEST_ARGS)

demo: APT_QUIET = -q
demo: PIP_QUIET = --progress-bar on
demo: install
	$(SHELL) scripts/demo.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage coverage.xml
