package images

import (
	"context"
	"runtime"
	"sync"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layerWindow makes layers download in the order the manifest lists them:
// a layer starts once fewer than size of the layers below it that are
// being fetched remain unfinished.
//
// containerd's unpacker starts a fetch for every layer at once and the
// resolver's limit then admits them in whatever order their goroutines
// reach it, so the bottom layer often comes late, and since layers are
// applied bottom-up, unpacking waits for it while later layers sit
// downloaded. In order, the bottom layer is among the first in and
// unpacking runs alongside the downloads of the layers above it.
//
// Only the layers that reach the window count: the unpacker fetches none
// of the bottom layers whose snapshots already exist (a base shared with
// an image already pulled), and a layer must not wait for those.
type layerWindow struct {
	size int

	mu       sync.Mutex
	position map[digest.Digest]int
	// pending counts, per position, the fetches that reached the window
	// and have not finished.
	pending map[int]int
	// turns are the unfinished fetches of each layer: a layer a manifest
	// lists twice is fetched twice.
	turns map[digest.Digest][]*fetchTurn
	// changed is closed, and replaced, whenever a fetch finishes.
	changed chan struct{}
}

// fetchTurn is one fetch of a layer in the window.
type fetchTurn struct {
	layer    digest.Digest
	position int
	done     bool
}

func newLayerWindow(size int) *layerWindow {
	return &layerWindow{
		size:     max(size, 1),
		position: map[digest.Digest]int{},
		pending:  map[int]int{},
		turns:    map[digest.Digest][]*fetchTurn{},
		changed:  make(chan struct{}),
	}
}

// wrap is an image handler wrapper (containerd.WithImageHandlerWrapper).
func (w *layerWindow) wrap(h images.Handler) images.Handler {
	return images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if images.IsLayerType(desc.MediaType) {
			turn, err := w.waitTurn(ctx, desc.Digest)
			if err != nil {
				return nil, err
			}
			defer w.finish(turn)
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

// waitTurn blocks while size or more of the layers below this one are
// pending. A layer of no known position (not from a manifest seen) does
// not wait and gets no turn.
func (w *layerWindow) waitTurn(ctx context.Context, layer digest.Digest) (*fetchTurn, error) {
	w.mu.Lock()
	i, known := w.position[layer]
	if !known {
		w.mu.Unlock()
		return nil, nil
	}
	turn := &fetchTurn{layer: layer, position: i}
	w.pending[i]++
	w.turns[layer] = append(w.turns[layer], turn)
	w.mu.Unlock()
	// The unpacker starts the fetches of all its layers in one go; letting
	// the others register before deciding keeps a layer that happens to
	// run first from taking a place meant for one below it.
	runtime.Gosched()

	w.mu.Lock()
	defer w.mu.Unlock()
	for w.pendingBelowLocked(i) >= w.size {
		changed := w.changed
		w.mu.Unlock()
		select {
		case <-changed:
			w.mu.Lock()
		case <-ctx.Done():
			w.mu.Lock()
			w.endLocked(turn)
			return nil, ctx.Err()
		}
	}
	return turn, nil
}

func (w *layerWindow) pendingBelowLocked(i int) int {
	n := 0
	for position, count := range w.pending {
		if position < i {
			n += count
		}
	}
	return n
}

// written ends the turn of a fetch of layer once all its bytes are in,
// before its commit: the next download need not wait for the disk sync.
func (w *layerWindow) written(layer digest.Digest) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, turn := range w.turns[layer] {
		if !turn.done {
			w.finishLocked(turn)
			return
		}
	}
}

// finish ends turn when its handler returns, whether the fetch succeeded
// or not (a failed fetch fails the pull).
func (w *layerWindow) finish(turn *fetchTurn) {
	if turn == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.endLocked(turn)
}

// endLocked finishes turn and forgets it.
func (w *layerWindow) endLocked(turn *fetchTurn) {
	w.finishLocked(turn)
	turns := w.turns[turn.layer]
	for i, t := range turns {
		if t == turn {
			w.turns[turn.layer] = append(turns[:i], turns[i+1:]...)
			break
		}
	}
	if len(w.turns[turn.layer]) == 0 {
		delete(w.turns, turn.layer)
	}
}

func (w *layerWindow) finishLocked(turn *fetchTurn) {
	if turn.done {
		return
	}
	turn.done = true
	w.pending[turn.position]--
	close(w.changed)
	w.changed = make(chan struct{})
}
