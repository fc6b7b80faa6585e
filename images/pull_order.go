package images

import (
	"context"
	"sync"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layerWindow makes layers download in the order the manifest lists them,
// at most size at a time: layer i starts once layer i-size is in.
//
// containerd's unpacker starts a fetch for every layer at once and the
// resolver's limit then admits them in whatever order their goroutines
// reach it, so the bottom layer often comes late, and since layers are
// applied bottom-up, unpacking waits for it while later layers sit
// downloaded. In order, the bottom layer is among the first in and
// unpacking runs alongside the downloads of the layers above it.
type layerWindow struct {
	size int

	mu       sync.Mutex
	position map[digest.Digest]int
	done     map[int]chan struct{}
}

func newLayerWindow(size int) *layerWindow {
	return &layerWindow{size: max(size, 1), position: map[digest.Digest]int{}, done: map[int]chan struct{}{}}
}

// wrap is an image handler wrapper (containerd.WithImageHandlerWrapper).
func (w *layerWindow) wrap(h images.Handler) images.Handler {
	return images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if images.IsLayerType(desc.MediaType) {
			if err := w.waitTurn(ctx, desc.Digest); err != nil {
				return nil, err
			}
			defer w.finished(desc.Digest)
		}
		children, err := h.Handle(ctx, desc)
		if err == nil && images.IsManifestType(desc.MediaType) {
			w.learn(children)
		}
		return children, err
	})
}

// learn records the layers' positions from a manifest's children. A layer
// already known (listed by another manifest) keeps its first position.
func (w *layerWindow) learn(children []ocispec.Descriptor) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := 0
	for _, c := range children {
		if !images.IsLayerType(c.MediaType) {
			continue
		}
		if _, known := w.position[c.Digest]; !known {
			w.position[c.Digest] = i
		}
		i++
	}
}

// waitTurn blocks until the layer size places below this one is in. A
// layer of no known position (not from a manifest seen) does not wait.
func (w *layerWindow) waitTurn(ctx context.Context, layer digest.Digest) error {
	w.mu.Lock()
	i, known := w.position[layer]
	var before chan struct{}
	if known && i >= w.size {
		before = w.doneLocked(i - w.size)
	}
	w.mu.Unlock()
	if before == nil {
		return nil
	}
	select {
	case <-before:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finished lets the layer size places above this one start. Called once
// per fetch, whether it succeeded or not: a failed fetch fails the pull.
func (w *layerWindow) finished(layer digest.Digest) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i, known := w.position[layer]
	if !known {
		return
	}
	ch := w.doneLocked(i)
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func (w *layerWindow) doneLocked(i int) chan struct{} {
	ch, ok := w.done[i]
	if !ok {
		ch = make(chan struct{})
		w.done[i] = ch
	}
	return ch
}
