# The project's commands. `make test` is what CI runs.
.PHONY: setup build test lint bench

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

# The ledger benchmarks of issue 3 (criterion; a few minutes).
bench: setup
	cargo bench -p ledger --bench ledger
