package images

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BlobStatus is where one blob of a pull stands.
type BlobStatus string

const (
	BlobWaiting     BlobStatus = "waiting"
	BlobDownloading BlobStatus = "downloading"
	BlobDone        BlobStatus = "done"
	// BlobExists marks content that was already in the content store.
	BlobExists BlobStatus = "exists"
)

// BlobProgress is one line of a pull's progress display.
type BlobProgress struct {
	Digest    digest.Digest
	MediaType string
	Status    BlobStatus
	Offset    int64
	Total     int64
}

// ProgressFunc receives the state of every blob seen so far, in the order
// they were discovered. It is called from one goroutine, periodically while
// the pull runs and once more when it has finished.
type ProgressFunc func([]BlobProgress)

const progressInterval = 100 * time.Millisecond

// pullTracker learns blobs from the image handler and their byte counts
// from the content store's active ingests, which is the only place the
// client can see transfer progress.
type pullTracker struct {
	store content.Store
	mu    sync.Mutex
	order []digest.Digest
	blobs map[digest.Digest]*BlobProgress
}

func newPullTracker(store content.Store) *pullTracker {
	return &pullTracker{store: store, blobs: map[digest.Digest]*BlobProgress{}}
}

// handler runs before the fetch handler for each descriptor, so content
// present at that point was there before the pull.
func (t *pullTracker) handler() images.HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		status := BlobWaiting
		if _, err := t.store.Info(ctx, desc.Digest); err == nil {
			status = BlobExists
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if _, ok := t.blobs[desc.Digest]; !ok {
			t.order = append(t.order, desc.Digest)
			t.blobs[desc.Digest] = &BlobProgress{Digest: desc.Digest, MediaType: desc.MediaType, Status: status, Total: desc.Size}
		}
		return nil, nil
	}
}

func (t *pullTracker) refresh(ctx context.Context) {
	active, err := t.store.ListStatuses(ctx)
	if err != nil {
		return
	}
	byDigest := make(map[digest.Digest]content.Status, len(active))
	for _, st := range active {
		// Ingest refs look like "layer-sha256:..."; the digest is the suffix.
		if i := strings.Index(st.Ref, "sha256:"); i >= 0 {
			byDigest[digest.Digest(st.Ref[i:])] = st
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, d := range t.order {
		blob := t.blobs[d]
		if blob.Status == BlobDone || blob.Status == BlobExists {
			continue
		}
		if st, ok := byDigest[d]; ok {
			blob.Status = BlobDownloading
			blob.Offset = st.Offset
			if st.Total > 0 {
				blob.Total = st.Total
			}
			continue
		}
		if _, err := t.store.Info(ctx, d); err == nil {
			blob.Status = BlobDone
			blob.Offset = blob.Total
		}
	}
}

func (t *pullTracker) finish() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, blob := range t.blobs {
		if blob.Status != BlobExists {
			blob.Status = BlobDone
			blob.Offset = blob.Total
		}
	}
}

func (t *pullTracker) snapshot() []BlobProgress {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]BlobProgress, 0, len(t.order))
	for _, d := range t.order {
		out = append(out, *t.blobs[d])
	}
	return out
}

// run reports progress until ctx is cancelled, then returns.
func (t *pullTracker) run(ctx context.Context, report ProgressFunc) {
	ticker := time.NewTicker(progressInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			t.refresh(ctx)
			report(t.snapshot())
		}
	}
}
