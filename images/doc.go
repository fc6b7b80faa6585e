// Package images pulls, pushes, lists, tags, removes, imports and exports
// container images in containerd. It is shared by the kctr CLI and the kcrid
// CRI server, so both resolve registries, mirrors and credentials the same way.
package images
