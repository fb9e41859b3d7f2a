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
test: lint
	cargo test --workspace

# The ledger benchmarks of issue 3 (criterion; about five minutes). The dev
# profile has ledger, crypto and every dependency at opt-level 3 and reuses
# the test build of RocksDB (a release build would compile RocksDB again).
bench: setup
	cargo bench --profile dev --workspace --bench ledger

# Installs what the build needs, builds the binaries (not the tests: `make
# test` builds those later, on the same dependencies and the same RocksDB
# build), and runs the whole lifecycle of a receivable on a local
# 4-validator testnet (in a temporary directory), printing each step and the
# final lineage tree; stops the testnet and exits.
demo: setup
	cargo build --workspace --bins
	"$(TARGET_DIR)/debug/scf" demo
