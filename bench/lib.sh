# Sourced by the benchmark scripts, from the repository root: builds oomlab
# (release), sets $bin to it, and $out to a scratch directory removed on exit.
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/oomlab"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
