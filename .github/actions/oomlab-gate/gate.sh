#!/usr/bin/env bash
# The oomlab-gate action's step (action.yml): `oomlab gate` from the inputs
# (environment variables named after them), the verdict to $GITHUB_OUTPUT,
# and to $GITHUB_STEP_SUMMARY when oomlab could not write its own table there
# (bad input, a crash). Exits with
# oomlab's code, so the job fails on a regression (1) as on bad input (2).
# tests/github_action.rs runs it with both files set to temporary ones.
set -uo pipefail
oomlab="${OOMLAB_BIN:-oomlab}"
json="${INPUT_JSON:-oomlab-gate-result.json}"
args=(gate --runs "${INPUT_RUNS:-3}" --json "$json")
if [ -n "${INPUT_AGAINST:-}" ]; then
  args+=(--against "$INPUT_AGAINST")
else
  args+=(--baseline "${INPUT_BASELINE:-reports/memory-baseline.json}")
fi
[ "${INPUT_UPDATE:-false}" = true ] && args+=(--update)
# Sizes and the stage pattern are blessed with an entry (or given with
# --against); judging a baseline re-runs what its entry names.
if [ "${INPUT_UPDATE:-false}" = true ] || [ -n "${INPUT_AGAINST:-}" ]; then
  [ -n "${INPUT_ROWS:-}" ] && args+=(--rows "$INPUT_ROWS")
  [ -n "${INPUT_STAGE_PATTERN:-}" ] && args+=(--stage-pattern "$INPUT_STAGE_PATTERN")
fi
[ -n "${INPUT_PRODUCTION_ROWS:-}" ] && args+=(--production-rows "$INPUT_PRODUCTION_ROWS")
if [ -n "${INPUT_COMMAND:-}" ]; then
  # One shell-quoted line, split as the shell would (no expansion of $ or *).
  mapfile -t cmd < <(python3 -c 'import shlex, sys; print("\n".join(shlex.split(sys.argv[1])))' "$INPUT_COMMAND")
  args+=(-- "${cmd[@]}")
fi

errors="$(mktemp)"
# Into a file, then to the log: a `2> >(tee ...)` process substitution is not
# always done writing when the summary reads the file (a clean-clone CI run
# once got an empty error block).
"$oomlab" "${args[@]}" 2>"$errors"
code=$?
cat "$errors" >&2
case "$code" in
  0) verdict=pass; [ "${INPUT_UPDATE:-false}" = true ] && verdict=updated ;;
  1) verdict=regression ;;
  2) verdict=bad-input ;;
  *) verdict=failed ;;
esac
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "verdict=$verdict"
    echo "exit-code=$code"
    echo "json=$json"
  } >> "$GITHUB_OUTPUT"
fi
if [ "$code" -gt 1 ] && [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  {
    echo "## oomlab memory gate: ⚠️ could not judge (exit $code, $verdict)"
    echo
    echo '```'
    tail -n 20 "$errors"
    echo '```'
    echo
  } >> "$GITHUB_STEP_SUMMARY"
fi
rm -f "$errors"
exit "$code"
