#!/usr/bin/env bash
# Runs the whole suite the way CI does: every package against Debian's
# containerd 1.6, then again against containerd 2.4 (built by `make deps`),
# then short fuzz runs. Each step is timed so slow suites show up.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
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

step "go test ./... (containerd 1.6)" env KCTR_TEST_CONTAINERD=1.6 "$GO" test -p 1 -count=1 -timeout 20m ./...
step "go test ./... (containerd 2.4)" env KCTR_TEST_CONTAINERD=2.4 "$GO" test -p 1 -count=1 -timeout 20m ./...
step "fuzz reference parsing" "$GO" test -run '^$' -fuzz '^FuzzParseReference$' -fuzztime "$FUZZTIME" ./images
step "fuzz hosts files" "$GO" test -run '^$' -fuzz '^FuzzHostsFile$' -fuzztime "$FUZZTIME" ./images

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
exit $status
