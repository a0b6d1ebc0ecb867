# The two commands. `make run` starts the demo (a pool of worker processes
# scaled by the built-in policies); `make test` runs every test. Both install the wasm targets they
# need (rustup is the only prerequisite).

.PHONY: run test policies targets bench simulate

targets:
	rustup target add wasm32-unknown-unknown wasm32-wasip2

# Build the built-in policies into the example host's policy directory.
# No -q: a first build takes minutes, and cargo's progress shows it moving.
# The `quickstart` profile is the release build tuned to compile quickly (see
# Cargo.toml); `cargo build --release` makes the full one.
policies: targets
	cargo run --profile quickstart -p scalewise -- policy build --out-dir examples/policies.d

run: policies
	cargo run --profile quickstart -p scalewise -- serve --config examples/scalewise.toml

test: targets
	cargo test --workspace

# The reference baselines on the public traces in data/traces.
simulate: policies
	cargo run --profile quickstart -q -p scalewise -- simulate examples/simulate/simulate.toml --out simulation

bench: targets
	cargo bench -p scalewise --bench policy_eval
	cargo bench -p scalewise --bench control_loop
	cargo bench -p scalewise --bench simulate
	cargo bench -p scalewise --bench host_start
