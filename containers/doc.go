// Package containers creates and runs containers straight on containerd for
// kctr: the OCI spec from an image and the user's options, the task and its
// stdio, and the cleanup that leaves nothing half-made behind.
package containers
