// Package kubelet is kubelet-lite's node agent: it keeps the static pods
// described by manifest files running through any CRI runtime, restarts
// their containers with back-off, runs their probes and reports their status.
//
// Everything it needs to resume after a restart is in the runtime (labels
// and annotations on sandboxes and containers) or under its root dir; the
// in-memory state is a cache of those.
package kubelet
