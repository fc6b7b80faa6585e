package images

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// describeCacheSize bounds the descriptions kept; a daemon rarely has more
// images than this, and when it has, the cache simply starts over.
const describeCacheSize = 512

// describeCache remembers what describe read from the content store for a
// manifest or index digest. Content is addressed by its digest and never
// changes, so a description stays true as long as the content is there;
// only complete descriptions are kept, since missing content can arrive
// later. A long-lived user (kcrid) then resolves an image in one call to
// the image store instead of a dozen content reads.
type describeCache struct {
	mu      sync.Mutex
	entries map[digest.Digest]description
}

func (c *describeCache) get(target digest.Digest) (description, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	img, ok := c.entries[target]
	return img, ok
}

func (c *describeCache) put(target digest.Digest, d description) {
	if !d.Complete {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= describeCacheSize {
		c.entries = map[digest.Digest]description{}
	}
	c.entries[target] = d
}

// forget drops a description whose content may have gone (image removed).
func (c *describeCache) forget(target digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, target)
}

// description is the part of an Image read from content: the same for
// every name that points at one target.
type description struct {
	ID       digest.Digest
	Size     int64
	Created  *time.Time
	Platform ocispec.Platform
	Config   ocispec.ImageConfig
	Complete bool
	DiffIDs  []digest.Digest
}

// setDescription fills img from d, copying what a caller could change, so
// that no caller can alter the cached copy.
func (img *Image) setDescription(d description) {
	img.ID = d.ID
	img.Size = d.Size
	img.Created = d.Created
	img.Platform = d.Platform
	img.Platform.OSFeatures = slices.Clone(d.Platform.OSFeatures)
	img.Complete = d.Complete
	img.DiffIDs = slices.Clone(d.DiffIDs)
	c := d.Config
	c.Env = slices.Clone(c.Env)
	c.Entrypoint = slices.Clone(c.Entrypoint)
	c.Cmd = slices.Clone(c.Cmd)
	c.Labels = maps.Clone(c.Labels)
	c.Volumes = maps.Clone(c.Volumes)
	c.ExposedPorts = maps.Clone(c.ExposedPorts)
	img.Config = c
}
