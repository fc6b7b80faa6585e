package images

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// windowRig drives a layerWindow the way containerd's fetches do: each
// layer's handler runs until the test releases it.
type windowRig struct {
	t      *testing.T
	window *layerWindow
	h      images.Handler
	layers []ocispec.Descriptor

	mu       sync.Mutex
	started  []int
	inFlight int
	most     int
	release  map[int]chan struct{}
	wg       sync.WaitGroup
}

func newWindowRig(t *testing.T, size int, layerDigests []digest.Digest) *windowRig {
	r := &windowRig{t: t, window: newLayerWindow(size), release: map[int]chan struct{}{}}
	manifest := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("manifest")}
	children := []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromString("config")}}
	for _, d := range layerDigests {
		layer := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d}
		r.layers = append(r.layers, layer)
		children = append(children, layer)
	}
	for i := range r.layers {
		r.release[i] = make(chan struct{})
	}
	r.h = r.window.wrap(images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if desc.Digest == manifest.Digest {
			return children, nil
		}
		i := ctx.Value(fetchIndex{}).(int)
		r.mu.Lock()
		r.started = append(r.started, i)
		r.inFlight++
		r.most = max(r.most, r.inFlight)
		r.mu.Unlock()
		<-r.release[i]
		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
		return nil, nil
	}))
	if _, err := r.h.Handle(context.Background(), manifest); err != nil {
		t.Fatal(err)
	}
	return r
}

type fetchIndex struct{}

func distinctLayers(n int) []digest.Digest {
	ds := make([]digest.Digest, n)
	for i := range ds {
		ds[i] = digest.FromString(fmt.Sprint("layer", i))
	}
	return ds
}

// fetch starts the fetch of the manifest's i-th layer and returns once
// the window knows of it.
func (r *windowRig) fetch(i int) {
	r.wg.Add(1)
	before := r.pendingAt(r.window.position[r.layers[i].Digest])
	go func() {
		defer r.wg.Done()
		ctx := context.WithValue(context.Background(), fetchIndex{}, i)
		if _, err := r.h.Handle(ctx, r.layers[i]); err != nil {
			r.t.Error(err)
		}
	}()
	r.waitFor(fmt.Sprintf("layer %d to reach the window", i), func() bool {
		return r.pendingAt(r.window.position[r.layers[i].Digest]) > before || r.hasStarted(i)
	})
}

func (r *windowRig) pendingAt(position int) int {
	r.window.mu.Lock()
	defer r.window.mu.Unlock()
	return r.window.pending[position]
}

func (r *windowRig) hasStarted(i int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.started {
		if s == i {
			return true
		}
	}
	return false
}

func (r *windowRig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// expectStarted checks that exactly the layers want have started, in that
// order, once a moment has passed for any other to start by mistake.
func (r *windowRig) expectStarted(want ...int) {
	r.t.Helper()
	r.waitFor(fmt.Sprintf("layers %v to start", want), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.started) >= len(want)
	})
	time.Sleep(20 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	if fmt.Sprint(r.started) != fmt.Sprint(want) {
		r.t.Fatalf("started %v, want %v", r.started, want)
	}
}

func (r *windowRig) finish(i int) { close(r.release[i]) }

func TestLayerWindowOrdersLayers(t *testing.T) {
	r := newWindowRig(t, 2, distinctLayers(5))
	for i := range 5 {
		r.fetch(i)
	}
	r.expectStarted(0, 1)
	r.finish(1)
	r.expectStarted(0, 1, 2)
	r.finish(0)
	r.expectStarted(0, 1, 2, 3)
	r.finish(2)
	r.expectStarted(0, 1, 2, 3, 4)
	r.finish(3)
	r.finish(4)
	r.wg.Wait()
	if r.most > 2 {
		t.Errorf("%d layers were fetched at once, the window is 2", r.most)
	}
}

// The unpacker fetches no layer whose snapshot already exists, so with
// a shared base only the top layers come: they must not wait for the base.
func TestLayerWindowSkippedBottomLayers(t *testing.T) {
	r := newWindowRig(t, 2, distinctLayers(6))
	for i := 3; i < 6; i++ {
		r.fetch(i)
	}
	r.expectStarted(3, 4)
	r.finish(3)
	r.expectStarted(3, 4, 5)
	r.finish(4)
	r.finish(5)
	r.wg.Wait()
}

// A layer written in full makes room before its handler returns (its
// commit's disk sync need not hold the next download back), once.
func TestLayerWindowWrittenMakesRoom(t *testing.T) {
	r := newWindowRig(t, 1, distinctLayers(3))
	for i := range 3 {
		r.fetch(i)
	}
	r.expectStarted(0)
	r.window.written(r.layers[0].Digest)
	r.window.written(r.layers[0].Digest)
	r.expectStarted(0, 1)
	r.finish(0)
	r.expectStarted(0, 1)
	r.finish(1)
	r.expectStarted(0, 1, 2)
	r.finish(2)
	r.wg.Wait()
}

// A layer a manifest lists twice is fetched twice; both fetches count.
func TestLayerWindowRepeatedLayer(t *testing.T) {
	ds := distinctLayers(2)
	r := newWindowRig(t, 2, []digest.Digest{ds[0], ds[0], ds[1]})
	for i := range 3 {
		r.fetch(i)
	}
	r.expectStarted(0, 1)
	r.finish(0)
	r.expectStarted(0, 1, 2)
	r.finish(1)
	r.finish(2)
	r.wg.Wait()
}

// A fetch given up while it waits leaves the window.
func TestLayerWindowCancelledWait(t *testing.T) {
	w := newLayerWindow(1)
	layers := distinctLayers(2)
	w.learn([]ocispec.Descriptor{
		{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: layers[0]},
		{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: layers[1]},
	})
	first, err := w.waitTurn(context.Background(), layers[0])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := w.waitTurn(ctx, layers[1]); err == nil {
		t.Fatal("a layer above a full window did not wait")
	}
	w.finish(first)
	if len(w.turns) != 0 || w.pending[0] != 0 || w.pending[1] != 0 {
		t.Fatalf("window not empty after all fetches ended: turns %v, pending %v", w.turns, w.pending)
	}
}
