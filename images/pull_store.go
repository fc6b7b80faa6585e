package images

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/containerd/v2/pkg/labels"
	"github.com/containerd/containerd/v2/pkg/reference"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/semaphore"
)

// pullStore is the content store one pull writes through.
//
// It sets, in the commit of each blob, the labels containerd's pull
// handlers would otherwise each write in a transaction of their own after
// the commit: the blob's distribution source and, for a layer kept for
// the in-process applier, its uncompressed digest, computed as the bytes
// stream by. When a handler then sets a label the blob already carries,
// the update is skipped. Every metadata transaction costs the daemon a
// disk sync, and these queued on one database with the unpacker's
// snapshot prepares and commits: they were two of the five each layer
// took.
//
// With keptLayers set it also keeps each layer's tar stream, up to that
// budget, for the in-process applier (pullApplier): the daemon never reads
// and hashes the blob again, and the layer is decompressed only once.
type pullStore struct {
	content.Store
	sourceKey, sourceValue string
	// keptLayers bounds the bytes of layers kept in memory; nil keeps none.
	keptLayers *semaphore.Weighted
	// written is told when all of a layer's bytes are in, before its commit.
	written func(digest.Digest)

	mu        sync.Mutex
	committed map[digest.Digest]content.Info
	kept      map[digest.Digest]*keptLayer
}

// keptLayer is a layer's uncompressed tar stream, with its uncompressed
// digest once committed. Every byte of tar is held in the budget.
type keptLayer struct {
	tar     []byte
	diffID  digest.Digest
	budget  *semaphore.Weighted
	dropped bool
}

// Write adds p to the stream while the budget allows, and drops the whole
// layer once it does not. It never fails: hashing goes on regardless.
func (k *keptLayer) Write(p []byte) (int, error) {
	if k.dropped {
		return len(p), nil
	}
	if !k.budget.TryAcquire(int64(len(p))) {
		k.drop()
		return len(p), nil
	}
	k.tar = append(k.tar, p...)
	return len(p), nil
}

// release returns the layer's bytes to the budget.
func (k *keptLayer) release() {
	k.budget.Release(int64(len(k.tar)))
	k.tar = nil
}

func (k *keptLayer) drop() {
	k.release()
	k.dropped = true
}

func newPullStore(store content.Store, ref string, keptLayers *semaphore.Weighted, written func(digest.Digest)) (*pullStore, error) {
	key, value, err := distributionSourceLabel(ref)
	if err != nil {
		return nil, err
	}
	return &pullStore{
		Store:       store,
		sourceKey:   key,
		sourceValue: value,
		keptLayers:  keptLayers,
		written:     written,
		committed:   map[digest.Digest]content.Info{},
		kept:        map[digest.Digest]*keptLayer{},
	}, nil
}

// distributionSourceLabel is the label containerd's
// docker.AppendDistributionSourceLabel gives a blob newly pulled from ref.
func distributionSourceLabel(ref string) (key, value string, err error) {
	spec, err := reference.Parse(ref)
	if err != nil {
		return "", "", err
	}
	u, err := url.Parse("dummy://" + spec.Locator)
	if err != nil {
		return "", "", err
	}
	return labels.LabelDistributionSource + "." + u.Hostname(), strings.TrimPrefix(u.Path, "/"), nil
}

func (s *pullStore) Writer(ctx context.Context, opts ...content.WriterOpt) (content.Writer, error) {
	var wopts content.WriterOpts
	for _, o := range opts {
		if err := o(&wopts); err != nil {
			return nil, err
		}
	}
	w, err := s.Store.Writer(ctx, opts...)
	if err != nil {
		return nil, err
	}
	lw := &labellingWriter{Writer: w, store: s, labels: map[string]string{}}
	if labels.Validate(s.sourceKey, s.sourceValue) == nil {
		lw.labels[s.sourceKey] = s.sourceValue
	}
	desc := wopts.Desc
	if !images.IsLayerType(desc.MediaType) || strings.Contains(desc.MediaType, "encrypted") {
		return lw, nil
	}
	compressed, err := images.DiffCompression(ctx, desc.MediaType)
	if err != nil {
		return lw, nil
	}
	lw.layer = true
	if compressed == "" {
		lw.labels[labels.LabelUncompressed] = desc.Digest.String()
	}
	// Only a layer unpacked here is decompressed as it streams in; any
	// other the daemon decompresses and hashes as it applies it, and doing
	// it here too would cost more than the label update it saves.
	if s.keptLayers == nil || desc.Size <= 0 {
		return lw, nil
	}
	if s.keptLayers.TryAcquire(desc.Size) { // at least as much as it will take
		s.keptLayers.Release(desc.Size)
		lw.kept = &keptLayer{budget: s.keptLayers}
		if compressed != "" {
			lw.diffID = newDiffIDHasher(lw.kept)
		}
	}
	return lw, nil
}

// Update skips a change of labels only, all of which this pull's commit
// already set to the values asked for. It then answers with the blob as
// committed, without asking the daemon: the pull's handlers do not read
// the answer, and the blob's labels have not changed since.
func (s *pullStore) Update(ctx context.Context, info content.Info, fieldpaths ...string) (content.Info, error) {
	if committed, ok := s.alreadyLabelled(info, fieldpaths); ok {
		return committed, nil
	}
	return s.Store.Update(ctx, info, fieldpaths...)
}

func (s *pullStore) alreadyLabelled(info content.Info, fieldpaths []string) (content.Info, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	committed, ok := s.committed[info.Digest]
	if !ok || len(fieldpaths) == 0 {
		return content.Info{}, false
	}
	for _, path := range fieldpaths {
		key, ok := strings.CutPrefix(path, "labels.")
		if !ok {
			return content.Info{}, false
		}
		if value, ok := committed.Labels[key]; !ok || value != info.Labels[key] {
			return content.Info{}, false
		}
	}
	committed.Labels = maps.Clone(committed.Labels)
	return committed, true
}

func (s *pullStore) committedBlob(committed content.Info, kept *keptLayer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dgst := committed.Digest
	s.committed[dgst] = committed
	if kept != nil {
		if old, ok := s.kept[dgst]; ok {
			old.release()
		}
		s.kept[dgst] = kept
	}
}

// takeLayer hands over the kept bytes of a layer, if any; the taker
// releases them.
func (s *pullStore) takeLayer(dgst digest.Digest) *keptLayer {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.kept[dgst]
	delete(s.kept, dgst)
	return k
}

// releaseKept returns the bytes of layers never applied (a failed pull,
// layers applied by the daemon) to the budget.
func (s *pullStore) releaseKept() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for dgst, k := range s.kept {
		k.release()
		delete(s.kept, dgst)
	}
}

// labellingWriter adds the pull's labels to a blob's commit.
type labellingWriter struct {
	content.Writer
	store  *pullStore
	labels map[string]string
	layer  bool
	// diffID hashes the uncompressed layer while it is written; nil when
	// the layer's digest is not computed here.
	diffID *diffIDHasher
	// streamed is how many bytes of the blob passed through Write in
	// order from its start.
	streamed int64
	// kept collects the layer's tar stream: the blob itself for an
	// uncompressed layer, from diffID's decompression for a compressed
	// one. nil when the layer is not kept.
	kept *keptLayer
}

// Status is what a fetch asks before it writes, and again after a reset.
// When the ingest stands anywhere but where this writer's stream does (a
// partial ingest resumed, a reset), the stream no longer covers the blob
// from its start, and neither the hash nor the kept bytes can be trusted.
func (w *labellingWriter) Status() (content.Status, error) {
	st, err := w.Writer.Status()
	if err != nil || st.Offset != w.streamed {
		w.stopStreaming()
	}
	return st, err
}

func (w *labellingWriter) Write(p []byte) (int, error) {
	n, err := w.Writer.Write(p)
	if n > 0 {
		w.streamed += int64(n)
		if w.kept != nil && w.diffID == nil {
			_, _ = w.kept.Write(p[:n])
		}
		if w.diffID != nil && !w.diffID.write(p[:n]) {
			// The stream did not decompress: no digest, and the bytes kept
			// came from it.
			w.stopStreaming()
		}
	}
	return n, err
}

func (w *labellingWriter) Truncate(size int64) error {
	w.stopStreaming()
	return w.Writer.Truncate(size)
}

// stopStreaming gives up the hash and the kept bytes, in that order: the
// hash's goroutine writes the kept bytes of a compressed layer.
func (w *labellingWriter) stopStreaming() {
	if w.diffID != nil {
		w.diffID.abort()
		w.diffID = nil
	}
	w.dropKept()
}

func (w *labellingWriter) dropKept() {
	if w.kept != nil {
		w.kept.release()
		w.kept = nil
	}
}

func (w *labellingWriter) Commit(ctx context.Context, size int64, expected digest.Digest, opts ...content.Opt) error {
	complete := w.streamed == size
	if w.layer && w.store.written != nil {
		w.store.written(expected)
	}
	set := maps.Clone(w.labels)
	if w.diffID != nil {
		dgst, ok := w.diffID.finish()
		if ok && complete {
			set[labels.LabelUncompressed] = dgst.String()
		} else {
			w.dropKept()
		}
		w.diffID = nil
	}
	if !complete || (w.kept != nil && w.kept.dropped) {
		w.dropKept()
	}
	// content.WithLabels replaces the labels, so the caller's are merged
	// into the pull's rather than set after them.
	var asked content.Info
	for _, o := range opts {
		if err := o(&asked); err != nil {
			return err
		}
	}
	maps.Copy(set, asked.Labels)
	if len(set) > 0 {
		opts = append(opts, content.WithLabels(set))
	}
	if err := w.Writer.Commit(ctx, size, expected, opts...); err != nil {
		return err
	}
	kept := w.kept
	w.kept = nil
	if kept != nil {
		kept.diffID = digest.Digest(set[labels.LabelUncompressed])
	}
	now := time.Now()
	w.store.committedBlob(content.Info{Digest: expected, Size: size, CreatedAt: now, UpdatedAt: now, Labels: set}, kept)
	return nil
}

func (w *labellingWriter) Close() error {
	w.stopStreaming()
	return w.Writer.Close()
}

// diffIDHasher decompresses a layer fed to it piece by piece and hashes
// the result, as the applier does when it unpacks the layer, passing the
// tar stream on to a keptLayer.
type diffIDHasher struct {
	pipe   *io.PipeWriter
	result chan diffIDResult
}

type diffIDResult struct {
	digest digest.Digest
	err    error
}

func newDiffIDHasher(kept *keptLayer) *diffIDHasher {
	r, w := io.Pipe()
	h := &diffIDHasher{pipe: w, result: make(chan diffIDResult, 1)}
	go func() {
		dgst, err := hashUncompressed(r, kept)
		// Unblock the writer should the stream end early.
		r.CloseWithError(fmt.Errorf("layer stream ended: %w", io.ErrClosedPipe))
		h.result <- diffIDResult{dgst, err}
	}()
	return h
}

func hashUncompressed(r io.Reader, tar io.Writer) (digest.Digest, error) {
	stream, err := compression.DecompressStream(r)
	if err != nil {
		return "", err
	}
	defer stream.Close()
	digester := digest.Canonical.Digester()
	if _, err := io.Copy(io.MultiWriter(digester.Hash(), tar), stream); err != nil {
		return "", err
	}
	return digester.Digest(), nil
}

func (h *diffIDHasher) write(p []byte) bool {
	_, err := h.pipe.Write(p)
	return err == nil
}

func (h *diffIDHasher) finish() (digest.Digest, bool) {
	h.pipe.Close()
	res := <-h.result
	return res.digest, res.err == nil
}

func (h *diffIDHasher) abort() {
	h.pipe.CloseWithError(fmt.Errorf("layer hashing abandoned: %w", io.ErrClosedPipe))
	<-h.result
}
