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

// Layers handed to the window all at once start bottom-up, never more than
// its size at a time, and each waits for the one size places below it.
func TestLayerWindowOrdersLayers(t *testing.T) {
	const size, n = 2, 6
	manifest := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("manifest")}
	layers := make([]ocispec.Descriptor, n)
	children := []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromString("config")}}
	for i := range layers {
		layers[i] = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString(fmt.Sprint("layer", i))}
		children = append(children, layers[i])
	}
	var mu sync.Mutex
	var started, inFlight, maxInFlight int
	order := map[digest.Digest]int{}
	release := make(chan struct{})
	inner := images.HandlerFunc(func(_ context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if desc.Digest == manifest.Digest {
			return children, nil
		}
		mu.Lock()
		order[desc.Digest] = started
		started++
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
		return nil, nil
	})
	h := newLayerWindow(size).wrap(inner)
	ctx := context.Background()
	if _, err := h.Handle(ctx, manifest); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := n - 1; i >= 0; i-- { // the worst order: top layer first
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.Handle(ctx, layers[i]); err != nil {
				t.Error(err)
			}
		}()
	}
	// Let one fetch finish at a time, once the window is full or all
	// remaining layers have started.
	for done := 0; done < n; done++ {
		for {
			mu.Lock()
			full := inFlight == min(size, n-done)
			mu.Unlock()
			if full {
				break
			}
			time.Sleep(time.Millisecond)
		}
		release <- struct{}{}
	}
	wg.Wait()
	if maxInFlight > size {
		t.Errorf("%d layers were fetched at once, the window is %d", maxInFlight, size)
	}
	for i := size; i < n; i++ {
		if order[layers[i].Digest] < order[layers[i-size].Digest] {
			t.Errorf("layer %d started before layer %d", i, i-size)
		}
	}
}
