package ctrnamespaces

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
)

// Contents counts what a namespace holds, kind by kind.
type Contents struct {
	Containers int
	Images     int
	// Snapshots per snapshotter name.
	Snapshots map[string]int
	Blobs     int
	Leases    int
}

// Empty reports whether nothing is counted.
func (c Contents) Empty() bool {
	return c.String() == ""
}

// String reads "2 containers, 1 image, 3 snapshots (overlayfs), 4 blobs";
// kinds with none are left out.
func (c Contents) String() string {
	var parts []string
	add := func(n int, one, many, detail string) {
		if n == 0 {
			return
		}
		word := many
		if n == 1 {
			word = one
		}
		part := fmt.Sprintf("%d %s", n, word)
		if detail != "" {
			part += " (" + detail + ")"
		}
		parts = append(parts, part)
	}
	add(c.Containers, "container", "containers", "")
	add(c.Images, "image", "images", "")
	names := make([]string, 0, len(c.Snapshots))
	for name := range c.Snapshots {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		add(c.Snapshots[name], "snapshot", "snapshots", name)
	}
	add(c.Blobs, "content blob", "content blobs", "")
	add(c.Leases, "lease", "leases", "")
	return strings.Join(parts, ", ")
}

// snapshotterType is the plugin type containerd registers snapshotters under.
const snapshotterType = "io.containerd.snapshotter.v1"

// Contents counts the containers, images, snapshots (in every snapshotter
// that loaded), content blobs and leases of namespace name.
func (m *Manager) Contents(ctx context.Context, name string) (Contents, error) {
	ctx = namespaces.WithNamespace(ctx, name)
	c := Contents{Snapshots: map[string]int{}}
	containers, err := m.client.ContainerService().List(ctx)
	if err != nil {
		return c, fmt.Errorf("list containers in %q: %w", name, err)
	}
	c.Containers = len(containers)
	imgs, err := m.client.ImageService().List(ctx)
	if err != nil {
		return c, fmt.Errorf("list images in %q: %w", name, err)
	}
	c.Images = len(imgs)
	if err := m.client.ContentStore().Walk(ctx, func(content.Info) error {
		c.Blobs++
		return nil
	}); err != nil {
		return c, fmt.Errorf("list content in %q: %w", name, err)
	}
	leases, err := m.client.LeasesService().List(ctx)
	if err != nil {
		return c, fmt.Errorf("list leases in %q: %w", name, err)
	}
	c.Leases = len(leases)
	plugins, err := m.client.IntrospectionService().Plugins(ctx, "type=="+snapshotterType)
	if err != nil {
		return c, fmt.Errorf("list snapshotters: %w", err)
	}
	for _, p := range plugins.Plugins {
		if p.InitErr != nil {
			continue
		}
		n := 0
		err := m.client.SnapshotService(p.ID).Walk(ctx, func(context.Context, snapshots.Info) error {
			n++
			return nil
		})
		if err != nil && !errdefs.IsNotFound(err) && !errdefs.IsNotImplemented(err) {
			return c, fmt.Errorf("list %s snapshots in %q: %w", p.ID, name, err)
		}
		if n > 0 {
			c.Snapshots[p.ID] = n
		}
	}
	return c, nil
}
