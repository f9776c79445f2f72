# Sourced by the benchmark scripts, from the repository root: builds oomlab
# (release), sets $bin to it, and $out to a scratch directory removed on exit
# (kept with KEEP_OUT=1, to read what a run wrote).
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/oomlab"
out=$(mktemp -d)
trap '[ -n "${KEEP_OUT:-}" ] || rm -rf "$out"' EXIT
