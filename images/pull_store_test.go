package images

import (
	"bytes"
	"context"
	"io"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/pkg/labels"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/semaphore"

	"github.com/kctr/kctr/internal/testimages"
)

// memoryLabels keeps a local content store's labels.
type memoryLabels struct {
	mu     sync.Mutex
	labels map[digest.Digest]map[string]string
}

func (m *memoryLabels) Get(d digest.Digest) (map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.labels[d]), nil
}

func (m *memoryLabels) Set(d digest.Digest, l map[string]string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.labels[d] = maps.Clone(l)
	return nil
}

func (m *memoryLabels) Update(d digest.Digest, update map[string]string) (map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := maps.Clone(m.labels[d])
	if l == nil {
		l = map[string]string{}
	}
	for k, v := range update {
		if v == "" {
			delete(l, k)
		} else {
			l[k] = v
		}
	}
	m.labels[d] = l
	return maps.Clone(l), nil
}

// countingUpdates is a content store that counts the updates reaching it.
type countingUpdates struct {
	content.Store
	updates int
}

func (c *countingUpdates) Update(ctx context.Context, info content.Info, fieldpaths ...string) (content.Info, error) {
	c.updates++
	return c.Store.Update(ctx, info, fieldpaths...)
}

type pullStoreRig struct {
	ctx     context.Context
	backing *countingUpdates
	budget  *semaphore.Weighted
	store   *pullStore
	written []digest.Digest
}

const testBudget = 1 << 20

func newPullStoreRig(t *testing.T) *pullStoreRig {
	local, err := local.NewLabeledStore(t.TempDir(), &memoryLabels{labels: map[digest.Digest]map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	r := &pullStoreRig{ctx: context.Background(), backing: &countingUpdates{Store: local}, budget: semaphore.NewWeighted(testBudget)}
	r.store, err = newPullStore(r.backing, "registry.example:5000/team/app:1", r.budget, func(d digest.Digest) { r.written = append(r.written, d) })
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// gzipLayer is a gzip-compressed layer holding one file of data, its
// descriptor, its uncompressed digest and its tar stream.
func gzipLayer(t *testing.T, data string) ([]byte, ocispec.Descriptor, digest.Digest, []byte) {
	t.Helper()
	fs := testimages.NewFS()
	fs.File("/etc/motd", 0o644, []byte(data))
	layer, err := fs.Layer()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	blob, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	diffID, err := layer.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	rc, err = layer.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	tar, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	return blob, desc, digest.Digest(diffID.String()), tar
}

const sourceLabel = labels.LabelDistributionSource + ".registry.example"

// A layer's commit carries its distribution source and uncompressed
// digest; the handlers' later updates of the same labels never reach the
// daemon, and the layer's bytes wait for the applier.
func TestPullStoreLabelsLayerAtCommit(t *testing.T) {
	r := newPullStoreRig(t)
	blob, desc, diffID, tar := gzipLayer(t, "hello from a layer\n")
	if err := content.WriteBlob(r.ctx, r.store, "layer", bytes.NewReader(blob), desc); err != nil {
		t.Fatal(err)
	}
	info, err := r.backing.Info(r.ctx, desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{sourceLabel: "team/app", labels.LabelUncompressed: diffID.String()}
	if !maps.Equal(info.Labels, want) {
		t.Fatalf("labels at commit = %v, want %v", info.Labels, want)
	}
	if len(r.written) != 1 || r.written[0] != desc.Digest {
		t.Errorf("written told %v, want the layer once", r.written)
	}

	for key, value := range want {
		got, err := r.store.Update(r.ctx, content.Info{Digest: desc.Digest, Labels: map[string]string{key: value}}, "labels."+key)
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest != desc.Digest || got.Labels[key] != value {
			t.Errorf("skipped update of %s answered %+v", key, got)
		}
	}
	if r.backing.updates != 0 {
		t.Errorf("%d updates of labels already set reached the store", r.backing.updates)
	}
	if _, err := r.store.Update(r.ctx, content.Info{Digest: desc.Digest, Labels: map[string]string{sourceLabel: "team/app,other/app"}}, "labels."+sourceLabel); err != nil {
		t.Fatal(err)
	}
	if r.backing.updates != 1 {
		t.Errorf("an update changing a label was skipped")
	}

	kept := r.store.takeLayer(desc.Digest)
	if kept == nil || !bytes.Equal(kept.tar, tar) || kept.diffID != diffID {
		t.Fatalf("kept layer = %+v, want its tar stream with diff ID %s", kept, diffID)
	}
	if r.budget.TryAcquire(testBudget) {
		t.Fatal("the kept layer's bytes are not counted against the budget")
	}
	kept.release()
	if !r.budget.TryAcquire(testBudget) {
		t.Fatal("released bytes did not return to the budget")
	}
}

// An uncompressed layer is its own tar stream and its own diff ID: it is
// kept as it streams in, with nothing to decompress or hash.
func TestPullStoreKeepsUncompressedLayer(t *testing.T) {
	r := newPullStoreRig(t)
	_, _, diffID, tar := gzipLayer(t, "hello from a plain layer\n")
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: diffID, Size: int64(len(tar))}
	if err := content.WriteBlob(r.ctx, r.store, "layer", bytes.NewReader(tar), desc); err != nil {
		t.Fatal(err)
	}
	info, err := r.backing.Info(r.ctx, desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if info.Labels[labels.LabelUncompressed] != diffID.String() {
		t.Errorf("labels at commit = %v, want the blob's own digest as uncompressed", info.Labels)
	}
	kept := r.store.takeLayer(desc.Digest)
	if kept == nil || !bytes.Equal(kept.tar, tar) || kept.diffID != diffID {
		t.Fatalf("kept layer = %+v, want the blob with diff ID %s", kept, diffID)
	}
	kept.release()
	if !r.budget.TryAcquire(testBudget) {
		t.Fatal("released bytes did not return to the budget")
	}
}

// A fetch that resumes a partial ingest writes only the rest of the blob:
// neither a hash nor kept bytes can come of that.
func TestPullStoreResumedIngest(t *testing.T) {
	r := newPullStoreRig(t)
	blob, desc, _, _ := gzipLayer(t, "hello from a layer\n")
	w, err := content.OpenWriter(r.ctx, r.backing, content.WithRef("layer"), content.WithDescriptor(desc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(blob[:len(blob)/2]); err != nil {
		t.Fatal(err)
	}
	w.Close()

	if err := content.WriteBlob(r.ctx, r.store, "layer", bytes.NewReader(blob), desc); err != nil {
		t.Fatal(err)
	}
	info, err := r.backing.Info(r.ctx, desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := info.Labels[labels.LabelUncompressed]; ok || info.Labels[sourceLabel] != "team/app" {
		t.Fatalf("labels = %v, want the distribution source only", info.Labels)
	}
	if kept := r.store.takeLayer(desc.Digest); kept != nil {
		t.Fatal("bytes of a resumed ingest were kept")
	}
	if !r.budget.TryAcquire(testBudget) {
		t.Fatal("bytes of the dropped layer did not return to the budget")
	}
}

// Blobs other than layers get their distribution source only; layers past
// the budget are not kept; a pull's end returns what was never applied.
func TestPullStoreKeepsWithinBudget(t *testing.T) {
	r := newPullStoreRig(t)
	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	configDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
	if err := content.WriteBlob(r.ctx, r.store, "config", bytes.NewReader(config), configDesc); err != nil {
		t.Fatal(err)
	}
	info, err := r.backing.Info(r.ctx, configDesc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(info.Labels, map[string]string{sourceLabel: "team/app"}) {
		t.Errorf("config labels = %v", info.Labels)
	}
	if r.store.takeLayer(configDesc.Digest) != nil || len(r.written) != 0 {
		t.Error("a config blob was treated as a layer")
	}

	blob, desc, _, _ := gzipLayer(t, "hello from a layer\n")
	if !r.budget.TryAcquire(testBudget - desc.Size + 1) {
		t.Fatal("budget unexpectedly taken")
	}
	if err := content.WriteBlob(r.ctx, r.store, "layer", bytes.NewReader(blob), desc); err != nil {
		t.Fatal(err)
	}
	if r.store.takeLayer(desc.Digest) != nil {
		t.Fatal("a layer beyond the budget was kept")
	}
	if info, err := r.backing.Info(r.ctx, desc.Digest); err != nil || info.Labels[labels.LabelUncompressed] != "" {
		t.Fatalf("a layer left to the daemon got labels %v (err %v); its uncompressed digest is the unpacker's to set", info.Labels, err)
	}
	r.budget.Release(testBudget - desc.Size + 1)

	// Room for the blob but not for its tar stream: dropped on the way.
	bigger, biggerDesc, biggerDiffID, biggerTar := gzipLayer(t, "a layer that compresses well "+strings.Repeat("well ", 1000))
	if !r.budget.TryAcquire(testBudget - int64(len(biggerTar)) + 1) {
		t.Fatal("budget unexpectedly taken")
	}
	if err := content.WriteBlob(r.ctx, r.store, "bigger", bytes.NewReader(bigger), biggerDesc); err != nil {
		t.Fatal(err)
	}
	if r.store.takeLayer(biggerDesc.Digest) != nil {
		t.Fatal("a layer whose tar stream outgrew the budget was kept")
	}
	if info, err := r.backing.Info(r.ctx, biggerDesc.Digest); err != nil || info.Labels[labels.LabelUncompressed] != biggerDiffID.String() {
		t.Errorf("a layer hashed in full lacks its uncompressed digest: %v (err %v)", info.Labels, err)
	}
	r.budget.Release(testBudget - int64(len(biggerTar)) + 1)

	otherBlob, otherDesc, _, _ := gzipLayer(t, "another layer\n")
	if err := content.WriteBlob(r.ctx, r.store, "other", bytes.NewReader(otherBlob), otherDesc); err != nil {
		t.Fatal(err)
	}
	r.store.releaseKept()
	if !r.budget.TryAcquire(testBudget) {
		t.Fatal("the end of the pull did not return kept bytes to the budget")
	}
}
