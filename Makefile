.PHONY: run test bench lint

# Builds in release mode and starts the standalone name server + broker.
run:
	cargo build --release
	./target/release/rmq standalone

# Runs every test: unit, end-to-end, the interop-capture fixtures, doc tests.
test:
	cargo test

# Criterion benches (numbers go in the issue notes, never in assertions).
bench:
	cargo bench

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
