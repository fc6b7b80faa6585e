// Package system answers `kctr info` and `kctr version` about the
// containerd kctr talks to, and prunes what a namespace no longer uses
// (`kctr system prune`).
package system
