package ctrnamespaces

import (
	"context"
	"fmt"
	"maps"
	"sort"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/errdefs"
)

// Namespace is one containerd namespace; the JSON shape is what
// `kctr namespace inspect` prints.
type Namespace struct {
	Name   string            `json:"Name"`
	Labels map[string]string `json:"Labels"`
}

// Manager works on the namespaces of one containerd.
type Manager struct {
	client *containerd.Client
}

// NewManager returns a Manager using client.
func NewManager(client *containerd.Client) *Manager {
	return &Manager{client: client}
}

// List returns every namespace with its labels, sorted by name.
func (m *Manager) List(ctx context.Context) ([]Namespace, error) {
	store := m.client.NamespaceService()
	names, err := store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	sort.Strings(names)
	out := make([]Namespace, 0, len(names))
	for _, name := range names {
		labels, err := store.Labels(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("labels of namespace %q: %w", name, err)
		}
		out = append(out, Namespace{Name: name, Labels: nonNil(labels)})
	}
	return out, nil
}

// Get returns one namespace; NotFound when containerd does not have it.
func (m *Manager) Get(ctx context.Context, name string) (Namespace, error) {
	if err := m.exists(ctx, name); err != nil {
		return Namespace{}, err
	}
	labels, err := m.client.NamespaceService().Labels(ctx, name)
	if err != nil {
		return Namespace{}, fmt.Errorf("labels of namespace %q: %w", name, err)
	}
	return Namespace{Name: name, Labels: nonNil(labels)}, nil
}

// Create makes a namespace with labels; AlreadyExists if there is one.
func (m *Manager) Create(ctx context.Context, name string, labels map[string]string) error {
	if err := identifiers.Validate(name); err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	if err := m.client.NamespaceService().Create(ctx, name, labels); err != nil {
		if errdefs.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %q: it already exists: %w", name, errdefs.ErrAlreadyExists)
		}
		return fmt.Errorf("create namespace %q: %w", name, err)
	}
	return nil
}

// SetLabels sets (or, with an empty value, removes) labels of an existing
// namespace.
func (m *Manager) SetLabels(ctx context.Context, name string, labels map[string]string) error {
	if err := m.exists(ctx, name); err != nil {
		return err
	}
	for _, k := range sortedKeys(labels) {
		if err := m.client.NamespaceService().SetLabel(ctx, name, k, labels[k]); err != nil {
			return fmt.Errorf("label namespace %q with %s: %w", name, k, err)
		}
	}
	return nil
}

// Remove deletes an empty namespace. One that still holds objects is left
// alone and the error counts them (FailedPrecondition); an unknown one is
// NotFound.
func (m *Manager) Remove(ctx context.Context, name string) error {
	if err := m.exists(ctx, name); err != nil {
		return err
	}
	err := m.client.NamespaceService().Delete(ctx, name)
	if err == nil {
		return nil
	}
	if errdefs.IsFailedPrecondition(err) {
		contents, countErr := m.Contents(ctx, name)
		if countErr == nil && !contents.Empty() {
			return fmt.Errorf("remove namespace %q: it still holds %s; remove them first (kctr -n %s ...): %w",
				name, contents, name, errdefs.ErrFailedPrecondition)
		}
		return fmt.Errorf("remove namespace %q: %w", name, err)
	}
	if errdefs.IsNotFound(err) {
		return notFound(name)
	}
	return fmt.Errorf("remove namespace %q: %w", name, err)
}

func (m *Manager) exists(ctx context.Context, name string) error {
	names, err := m.client.NamespaceService().List(ctx)
	if err != nil {
		return fmt.Errorf("list namespaces: %w", err)
	}
	for _, n := range names {
		if n == name {
			return nil
		}
	}
	return notFound(name)
}

func notFound(name string) error {
	return fmt.Errorf("namespace %q: no such namespace: %w", name, errdefs.ErrNotFound)
}

func nonNil(labels map[string]string) map[string]string {
	if labels == nil {
		return map[string]string{}
	}
	return labels
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range maps.Keys(m) {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
