package containers

import (
	"context"
	"fmt"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
)

// Find looks a container up the way Docker does: by name, by full ID, or
// by an unambiguous ID prefix.
func (m *Manager) Find(ctx context.Context, idOrName string) (containerd.Container, error) {
	if idOrName == "" {
		return nil, fmt.Errorf("container name or ID is empty: %w", errdefs.ErrInvalidArgument)
	}
	byName, err := m.client.Containers(ctx, fmt.Sprintf("labels.%q==%q", LabelName, idOrName))
	if err != nil {
		return nil, fmt.Errorf("find container %q: %w", idOrName, err)
	}
	if len(byName) == 1 {
		return byName[0], nil
	}
	all, err := m.client.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("find container %q: %w", idOrName, err)
	}
	var matches []containerd.Container
	for _, c := range all {
		if c.ID() == idOrName {
			return c, nil
		}
		if strings.HasPrefix(c.ID(), idOrName) {
			matches = append(matches, c)
		}
	}
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("no such container: %s: %w", idOrName, errdefs.ErrNotFound)
	case 1:
		return matches[0], nil
	}
	return nil, fmt.Errorf("container ID prefix %q matches %d containers: %w", idOrName, len(matches), errdefs.ErrInvalidArgument)
}

func namespaceOf(ctx context.Context) (string, bool) {
	return namespaces.Namespace(ctx)
}
