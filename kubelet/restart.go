package kubelet

import (
	"time"

	v1 "k8s.io/api/core/v1"
)

// Backoff is the CrashLoopBackOff policy: the first restart waits Initial,
// each further one twice the last, at most Max; a container that ran for
// Reset or longer before exiting starts the sequence over.
type Backoff struct {
	Initial, Max, Reset time.Duration
}

// Next is the wait before restarting a container that waited prev before
// its own start (0 for the first instance) and then ran for ran.
func (b Backoff) Next(prev, ran time.Duration) time.Duration {
	if prev <= 0 || ran >= b.Reset {
		return b.Initial
	}
	next := prev * 2
	if next > b.Max || next <= 0 {
		return b.Max
	}
	return next
}

// shouldRestart applies the pod's restart policy to an exited container.
func shouldRestart(policy v1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case v1.RestartPolicyNever:
		return false
	case v1.RestartPolicyOnFailure:
		return exitCode != 0
	default:
		return true
	}
}

// restartDecision is what to do with a container's latest instance that
// is not running.
type restartDecision struct {
	restart bool
	// wait is how long until the restart may happen (0: now).
	wait time.Duration
	// backoff is the delay the restarted instance is annotated with.
	backoff time.Duration
}

// decideRestart decides for an exited instance at now.
func decideRestart(b Backoff, policy v1.RestartPolicy, last *runtimeContainer, now time.Time) restartDecision {
	if !shouldRestart(policy, last.effectiveExitCode()) {
		return restartDecision{}
	}
	ran := time.Duration(0)
	if !last.startedAt.IsZero() && last.finishedAt.After(last.startedAt) {
		ran = last.finishedAt.Sub(last.startedAt)
	}
	delay := b.Next(last.backoff, ran)
	finished := last.finishedAt
	if finished.IsZero() {
		finished = last.createdAt
	}
	wait := finished.Add(delay).Sub(now)
	if wait < 0 {
		wait = 0
	}
	return restartDecision{restart: true, wait: wait, backoff: delay}
}
