package images

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/diff"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/archive"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// pullApplier unpacks the layers a pull kept in memory, decompressed (see
// pullStore), into their snapshots from this process, and leaves every
// other layer to the daemon's diff service.
//
// The daemon's applier reads the blob back from its content store and
// hashes the uncompressed stream; Debian's containerd 1.6 hashes at about
// 200 MB/s, which made applying the slowest step of each layer's unpack,
// and the unpack is a chain: a layer's snapshot is prepared only once the
// one below is committed. Here the tar stream is at hand and its digest
// was computed while the layer downloaded.
//
// Only a snapshot whose files can be written in place qualifies: an
// overlay mount's upper dir (whiteouts converted as containerd does) or a
// bind-mounted dir, the same two cases containerd's applier writes
// without mounting.
type pullApplier struct {
	daemon containerd.DiffService
	store  *pullStore
}

func (a *pullApplier) Compare(ctx context.Context, lower, upper []mount.Mount, opts ...diff.Opt) (ocispec.Descriptor, error) {
	return a.daemon.Compare(ctx, lower, upper, opts...)
}

func (a *pullApplier) Apply(ctx context.Context, desc ocispec.Descriptor, mounts []mount.Mount, opts ...diff.ApplyOpt) (ocispec.Descriptor, error) {
	kept := a.store.takeLayer(desc.Digest)
	if kept == nil {
		return a.daemon.Apply(ctx, desc, mounts, opts...)
	}
	defer kept.release()
	dir, applyOpts, ok := inPlaceTarget(mounts)
	if !ok || len(opts) > 0 || kept.diffID == "" {
		return a.daemon.Apply(ctx, desc, mounts, opts...)
	}
	// The whole stream, trailing bytes included, was hashed as it
	// downloaded; the tar is all that is left to write.
	if _, err := archive.Apply(ctx, dir, bytes.NewReader(kept.tar), applyOpts...); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("apply layer %s: %w", desc.Digest, err)
	}
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Size: int64(len(kept.tar)), Digest: kept.diffID}, nil
}

// inPlaceTarget is where a layer for mounts can be written without
// mounting anything, and how.
func inPlaceTarget(mounts []mount.Mount) (string, []archive.ApplyOpt, bool) {
	if len(mounts) != 1 {
		return "", nil, false
	}
	m := mounts[0]
	for _, o := range m.Options {
		if o == "ro" {
			return "", nil, false
		}
	}
	switch m.Type {
	case "bind":
		return m.Source, nil, true
	case "overlay":
		var upper string
		var lower []string
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(o, "upperdir="); ok {
				upper = v
			} else if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
				lower = strings.Split(v, ":")
			}
		}
		if upper == "" {
			return "", nil, false
		}
		opts := []archive.ApplyOpt{archive.WithConvertWhiteout(archive.OverlayConvertWhiteout)}
		if len(lower) > 0 {
			opts = append(opts, archive.WithParents(lower))
		}
		return upper, opts, true
	}
	return "", nil, false
}
