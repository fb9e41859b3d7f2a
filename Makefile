# The project's commands. `make test` is what CI runs.
.PHONY: setup build test lint bench demo

# Where Cargo puts what it builds (CARGO_TARGET_DIR if set).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

setup:
	bash scripts/setup.sh

build: setup
	cargo build --workspace --all-targets

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# Installs what the build needs, checks formatting and lints, runs every test.
# The lints and the tests share one build: clippy-driver, as the workspace's
# compiler wrapper, lints each workspace crate (warnings denied, as in `make
# lint`) while it compiles it for the tests. `cargo clippy` would first check
# every dependency in check mode, a second compilation of all of them: a
# fresh `.ci/run` on 2 cores built for 1,421 s that way and 1,336 s with one
# build (it mostly overlapped RocksDB's C++). Both cargo commands
# carry the same wrapper, so the tests find everything built. The tests run
# in two streams at once (`scripts/test.sh`).
LINTED := RUSTC_WORKSPACE_WRAPPER="$$(rustc --print sysroot)/bin/clippy-driver" \
	CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

test: setup
	cargo fmt --all -- --check
	$(LINTED) cargo test --workspace --all-targets --no-run
	$(LINTED) bash scripts/test.sh

# The ledger benchmarks of issue 3 (criterion; about five minutes). The dev
# profile has ledger, crypto and every dependency at opt-level 3 and reuses
# the test build of RocksDB (a release build would compile RocksDB again).
bench: setup
	cargo bench --profile dev --workspace --bench ledger

# Installs what the build needs, builds the one binary it runs (`scf`, with
# the workspace's feature set, so `make test` later reuses every dependency
# and the same RocksDB build), and runs the whole lifecycle of a receivable
# on a local 4-validator testnet (in a temporary directory), printing each
# step and the final lineage tree; stops the testnet and exits.
demo: setup
	cargo build --workspace --bin scf
	"$(TARGET_DIR)/debug/scf" demo
