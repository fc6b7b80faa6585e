// Package testenv starts real dependencies (private containerd 1.6/2.4 daemons, registries) for integration tests, the demo and benchmarks.
// Every daemon lives in its own temp dir and is stopped only by the PID this package started, so parallel runs never touch a system daemon.
// Start* functions need no testing.TB; the New* wrappers add t.Cleanup and skip (or fail under CI=true) when root or a binary is missing.
package testenv
