package images

import (
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestDescribeCacheKeepsOnlyCompleteDescriptions(t *testing.T) {
	var c describeCache
	partial := digest.FromString("partial")
	c.put(partial, description{ID: partial})
	if _, ok := c.get(partial); ok {
		t.Error("an incomplete description was cached: content may still arrive")
	}
	whole := digest.FromString("whole")
	c.put(whole, description{ID: whole, Complete: true})
	if _, ok := c.get(whole); !ok {
		t.Error("a complete description was not cached")
	}
	c.forget(whole)
	if _, ok := c.get(whole); ok {
		t.Error("forget kept the description")
	}
	for i := range describeCacheSize + 1 {
		d := digest.FromString(string(rune(i)))
		c.put(d, description{ID: d, Complete: true})
	}
	if n := len(c.entries); n > describeCacheSize {
		t.Errorf("cache holds %d descriptions, more than its bound %d", n, describeCacheSize)
	}
}

func TestSetDescriptionCopiesWhatCallersCanChange(t *testing.T) {
	d := description{
		Config: ocispec.ImageConfig{
			Env:    []string{"A=1"},
			Cmd:    []string{"sh"},
			Labels: map[string]string{"k": "v"},
		},
		DiffIDs:  []digest.Digest{digest.FromString("layer")},
		Complete: true,
	}
	var img Image
	img.setDescription(d)
	img.Config.Env[0] = "A=2"
	img.Config.Cmd[0] = "true"
	img.Config.Labels["k"] = "changed"
	img.DiffIDs[0] = ""
	if d.Config.Env[0] != "A=1" || d.Config.Cmd[0] != "sh" || d.Config.Labels["k"] != "v" || d.DiffIDs[0] == "" {
		t.Errorf("changing an Image changed the cached description: %+v", d)
	}
}
