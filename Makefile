.PHONY: run test bench lint

# Builds in release mode and starts the standalone name server + broker.
run:
	cargo build --release
	./target/release/rmq standalone

# Runs every test: unit, end-to-end, the interop-capture fixtures, doc tests,
# and the crash tests at the store's failpoints (the `failpoints` feature).
test:
	cargo test --features failpoints

# Criterion benches (numbers go in the issue notes, never in assertions).
bench:
	cargo bench

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --features failpoints -- -D warnings
