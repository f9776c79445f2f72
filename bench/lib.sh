# Sourced by the benchmark scripts, from the repository root: sets $bin to
# the oomlab to measure ($OOMLAB_BIN when set, as the integration tests read
# it; else the release build, built here), and $out to a scratch directory
# removed on exit (kept with KEEP_OUT=1, to read what a run wrote).
if [[ -n "${OOMLAB_BIN:-}" ]]; then
  bin="$OOMLAB_BIN"
else
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-target}/release/oomlab"
fi
out=$(mktemp -d)
trap '[ -n "${KEEP_OUT:-}" ] || rm -rf "$out"' EXIT
