#!/usr/bin/env bash
# Runs the whole suite the way CI does: every package against Debian's
# containerd 1.6, then again against containerd 2.4 (built by `make deps`),
# then short fuzz runs. Each step is timed so slow suites show up.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
# Fuzz budgets are counts, not durations: with a duration, go1.26's fuzz
# coordinator can fail a run with a bare "context deadline exceeded" when
# the deadline meets a busy worker (go.dev/issue/75804, fixed in go1.27).
# -short keeps the images TestMain from starting containerd in every fuzz
# worker; the minimization budget keeps a new interesting input from
# stalling all execs for up to a minute.
FUZZTIME=${FUZZTIME:-20000x}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-200x}
# -p 1: packages share host state (iptables nat chains, bridges, the CNI
# IPAM directory); one at a time keeps their set-up and clean-up apart.
status=0
summary=()

step() {
  local name=$1; shift
  local start=$SECONDS
  echo "=== $name"
  if "$@"; then
    summary+=("PASS  $name ($((SECONDS - start))s)")
  else
    summary+=("FAIL  $name ($((SECONDS - start))s)")
    status=1
  fi
}

# critest's counts (cmd/kcrid's TestCritest keeps its output in a log per
# daemon); go test shows a passing package's output only with -v.
critest_counts() {
  local log="${TMPDIR:-/tmp}/kcrid-critest-$1.log"
  if [[ -f $log ]]; then
    summary+=("      critest v1.37 against kcrid on containerd $1: $(grep -m1 -oE 'Ran [0-9]+ of [0-9]+ Specs' "$log"): $(grep -m1 -oE '[0-9]+ Passed \| [0-9]+ Failed \| [0-9]+ Pending \| [0-9]+ Skipped' "$log")")
  fi
}

rm -f "${TMPDIR:-/tmp}"/kcrid-critest-{1.6,2.4}.log
step "go test ./... (containerd 1.6)" env KCTR_TEST_CONTAINERD=1.6 "$GO" test -p 1 -count=1 -timeout 20m ./...
critest_counts 1.6
step "go test ./... (containerd 2.4)" env KCTR_TEST_CONTAINERD=2.4 "$GO" test -p 1 -count=1 -timeout 20m ./...
critest_counts 2.4
fuzz() { "$GO" test -short -run '^$' -fuzz "^$1\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" ./images; }
step "fuzz reference parsing" fuzz FuzzParseReference
step "fuzz hosts files" fuzz FuzzHostsFile

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
exit $status
