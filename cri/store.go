package cri

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
)

// index is the in-memory table of one kind of object (sandboxes or
// containers): by ID, with unique CRI names reserved before creation so two
// concurrent creations of the same name cannot both proceed.
type index[T any] struct {
	kind  string
	mu    sync.RWMutex
	byID  map[string]T
	names map[string]string // CRI name -> ID
}

func newIndex[T any](kind string) *index[T] {
	return &index[T]{kind: kind, byID: map[string]T{}, names: map[string]string{}}
}

// reserve claims name for id; AlreadyExists when another ID holds it.
func (x *index[T]) reserve(name, id string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if other, ok := x.names[name]; ok && other != id {
		return fmt.Errorf("%s name %q is reserved for %s: %w", x.kind, name, other, errdefs.ErrAlreadyExists)
	}
	x.names[name] = id
	return nil
}

// release frees name if id holds it.
func (x *index[T]) release(name, id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.names[name] == id {
		delete(x.names, name)
	}
}

func (x *index[T]) add(id string, v T) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.byID[id] = v
}

// remove drops id and its name.
func (x *index[T]) remove(id, name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.byID, id)
	if x.names[name] == id {
		delete(x.names, name)
	}
}

// get finds an object by full ID or unique ID prefix.
func (x *index[T]) get(idOrPrefix string) (T, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var zero T
	if idOrPrefix == "" {
		return zero, fmt.Errorf("%s ID is empty: %w", x.kind, errdefs.ErrInvalidArgument)
	}
	if v, ok := x.byID[idOrPrefix]; ok {
		return v, nil
	}
	var found []string
	for id := range x.byID {
		if strings.HasPrefix(id, idOrPrefix) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return zero, fmt.Errorf("%s %q: %w", x.kind, idOrPrefix, errdefs.ErrNotFound)
	case 1:
		return x.byID[found[0]], nil
	}
	return zero, fmt.Errorf("%s ID prefix %q is ambiguous (%d matches): %w", x.kind, idOrPrefix, len(found), errdefs.ErrInvalidArgument)
}

// list returns every object, sorted by ID for stable output.
func (x *index[T]) list() []T {
	x.mu.RLock()
	defer x.mu.RUnlock()
	ids := make([]string, 0, len(x.byID))
	for id := range x.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]T, 0, len(ids))
	for _, id := range ids {
		out = append(out, x.byID[id])
	}
	return out
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
