#!/usr/bin/env bash
# Runs every test of the workspace (`make test` builds them first) in two
# streams at once: the multi-node harness of `tests/` (the Byzantine
# harness, the chaos runner, the floods, governance, the PostgreSQL sink:
# about five minutes) and every other package (about three and a half).
#
# Cargo runs one test binary at a time, and these tests spend most of their
# time waiting for consensus rounds, timeouts and attack windows: with one
# stream the machine's 2 cores were about 80 % idle. Each test starts its
# own processes on its own free ports in its own temporary directories, so
# the two streams share nothing but the cores. Each line is prefixed with
# its stream; the script fails if either stream fails, and names it.
#
# Both cargo commands select a subset of the workspace that resolves every
# dependency with the same features as `cargo test --workspace` (checked
# with cargo's unit graph), so neither compiles anything again.
set -uo pipefail

run_stream() {
  local name=$1
  shift
  cargo test "$@" 2>&1 | sed -u "s/^/[$name] /"
}

run_stream harness -p scf-tests &
harness=$!
run_stream workspace --workspace --exclude scf-tests &
workspace=$!

# Stop both streams (and their test processes) if this script is stopped.
trap 'kill $harness $workspace 2>/dev/null; wait' INT TERM

failed=()
wait "$workspace" || failed+=("workspace (every package but scf-tests)")
wait "$harness" || failed+=("harness (scf-tests)")

if [ ${#failed[@]} -gt 0 ]; then
  echo "tests failed in: ${failed[*]}; see the lines prefixed with the stream's name" >&2
  exit 1
fi
echo "every test passed in both streams"
