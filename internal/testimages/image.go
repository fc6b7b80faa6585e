package testimages

import (
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// createdBy marks history entries so a pulled image shows where it came from.
const createdBy = "kctr internal/testimages"

// NewImage assembles an OCI image (OCI manifest and config media types) for linux and
// the host architecture from cfg and layers, with every timestamp at the Unix epoch so
// that the digest depends only on the inputs.
func NewImage(cfg v1.Config, layers ...v1.Layer) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: epoch},
		Config:       cfg,
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	return appendLayers(img, layers...)
}

func appendLayers(img v1.Image, layers ...v1.Layer) (v1.Image, error) {
	adds := make([]mutate.Addendum, 0, len(layers))
	for _, l := range layers {
		adds = append(adds, mutate.Addendum{
			Layer:     l,
			MediaType: types.OCILayer,
			History:   v1.History{Created: v1.Time{Time: epoch}, CreatedBy: createdBy},
		})
	}
	return mutate.Append(img, adds...)
}

// AppendFS adds f as a new top layer of base; the way to put extra programs or files
// on top of Busybox() without rebuilding it.
func AppendFS(base v1.Image, f *FS) (v1.Image, error) {
	l, err := f.Layer()
	if err != nil {
		return nil, err
	}
	return appendLayers(base, l)
}

// WithUser returns base with its config User set ("1002", "www-data", "1003:1004"); the
// CRI conformance suite checks how the runtime resolves each of these forms.
func WithUser(base v1.Image, user string) (v1.Image, error) {
	cf, err := base.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg := *cf.Config.DeepCopy()
	cfg.User = user
	return mutate.Config(base, cfg)
}

// MultiLayer builds an image of layers layers, layer i holding the single file
// /layer-<i> of layerSize pseudo-random bytes. Random content does not compress, so
// the bytes pulled equal the bytes stored, which is what pull benchmarks want to size.
// The content comes from ChaCha8 keyed by (seed, i): the same seed always yields the
// same digests, and distinct seeds or layers never share a blob that a registry or
// content store could deduplicate.
func MultiLayer(layers int, layerSize int64, seed int64) (v1.Image, error) {
	// Deflate cannot shrink random bytes and would emit stored blocks anyway;
	// skipping the futile match search makes building several times faster.
	return multiLayer(layers, layerSize, seed, func(r io.Reader) io.Reader { return r }, gzip.NoCompression)
}

// MultiLayerText is MultiLayer with text for content: words of a small
// vocabulary, so each layer compresses to about a quarter, as the text,
// binaries and libraries of real images roughly do. Pulling it decompresses
// four bytes for every one downloaded.
func MultiLayerText(layers int, layerSize int64, seed int64) (v1.Image, error) {
	return multiLayer(layers, layerSize, seed, newWords, gzip.BestSpeed)
}

func multiLayer(layers int, layerSize int64, seed int64, content func(random io.Reader) io.Reader, level int) (v1.Image, error) {
	if layers < 1 || layerSize < 0 {
		return nil, fmt.Errorf("testimages: %d layers of %d bytes: need at least one layer and a non-negative size", layers, layerSize)
	}
	ls := make([]v1.Layer, 0, layers)
	for i := range layers {
		var key [32]byte
		binary.LittleEndian.PutUint64(key[0:], uint64(seed))
		binary.LittleEndian.PutUint64(key[8:], uint64(i))
		copy(key[16:], "kctr-multilayer!")
		f := NewFS()
		f.FileFrom(fmt.Sprintf("/layer-%d", i), 0o644, layerSize, func() io.Reader {
			return content(rand.NewChaCha8(key))
		})
		l, err := f.layer(level)
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	return NewImage(v1.Config{
		Env: []string{defaultPath},
	}, ls...)
}

// words turns random bytes into an endless stream of words.
type words struct {
	random  io.Reader
	pending []byte
	buf     [256]byte
}

var vocabulary = strings.Fields("the a layer of an image holds files libraries and binaries " +
	"config etc usr lib bin share doc locale zoneinfo python3 site packages init " +
	"containerd runtime snapshot overlay kubelet pod sandbox")

func newWords(random io.Reader) io.Reader { return &words{random: random} }

func (w *words) Read(p []byte) (int, error) {
	for len(w.pending) == 0 {
		if _, err := io.ReadFull(w.random, w.buf[:]); err != nil {
			return 0, err
		}
		for _, b := range w.buf {
			w.pending = append(w.pending, vocabulary[int(b)%len(vocabulary)]...)
			if b%16 == 0 {
				w.pending = append(w.pending, '\n')
			} else {
				w.pending = append(w.pending, ' ')
			}
		}
	}
	n := copy(p, w.pending)
	w.pending = w.pending[n:]
	return n, nil
}
