package cri

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/opencontainers/image-spec/identity"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/images"
)

// imageService serves the CRI ImageService through the images package and
// gives the runtime side the images it runs.
type imageService struct {
	runtimeapi.UnimplementedImageServiceServer
	client  *containerd.Client
	images  *images.Service
	pinned  string   // normalised sandbox image name
	pulling sync.Map // ref -> *sync.Mutex: one pull per ref at a time
}

func newImageService(client *containerd.Client, svc *images.Service, sandboxImage string) *imageService {
	pinned, err := images.NormalizeName(sandboxImage)
	if err != nil {
		pinned = sandboxImage
	}
	return &imageService{client: client, images: svc, pinned: pinned}
}

// ensure returns the image ref denotes (name or ID), unpacked for the
// snapshotter; it pulls a missing image only when pull is set.
func (s *imageService) ensure(ctx context.Context, ref string, pull bool) (containerd.Image, *images.Image, error) {
	img, err := s.lookup(ctx, ref)
	if errdefs.IsNotFound(err) && pull {
		mu, _ := s.pulling.LoadOrStore(ref, &sync.Mutex{})
		mu.(*sync.Mutex).Lock()
		img, err = s.lookup(ctx, ref)
		if errdefs.IsNotFound(err) {
			img, err = s.images.Pull(ctx, ref, images.PullOptions{})
		}
		mu.(*sync.Mutex).Unlock()
	}
	if err != nil {
		return nil, nil, err
	}
	handle := containerd.NewImageWithPlatform(s.client, img.Record(), platforms.Default())
	unpacked, err := s.isUnpacked(ctx, img, handle)
	if err != nil {
		return nil, nil, fmt.Errorf("check image %s: %w", img.Name, err)
	}
	if !unpacked {
		if err := handle.Unpack(ctx, s.images.Snapshotter()); err != nil {
			return nil, nil, fmt.Errorf("unpack image %s: %w", img.Name, err)
		}
	}
	return handle, img, nil
}

// isUnpacked checks for the image's top snapshot: one Stat when the
// layer digests are known (they are cached with the image's description),
// instead of the manifest and config reads of Image.IsUnpacked.
func (s *imageService) isUnpacked(ctx context.Context, img *images.Image, handle containerd.Image) (bool, error) {
	if len(img.DiffIDs) == 0 {
		return handle.IsUnpacked(ctx, s.images.Snapshotter())
	}
	_, err := s.client.SnapshotService(s.images.Snapshotter()).Stat(ctx, identity.ChainID(img.DiffIDs).String())
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// withRootfs prepares the container's writable snapshot on top of the
// image's unpacked layers, like containerd.WithNewSnapshot but without
// reading the manifest and config again when the layer digests are known.
// The snapshot's mounts go to *mounts (left nil when not learnt) for the
// task create (task_create.go).
func withRootfs(id, snapshotter string, img *images.Image, handle containerd.Image, mounts *[]mount.Mount) containerd.NewContainerOpts {
	if len(img.DiffIDs) == 0 {
		return containerd.WithNewSnapshot(id, handle)
	}
	return func(ctx context.Context, client *containerd.Client, c *containers.Container) error {
		prepared, err := client.SnapshotService(snapshotter).Prepare(ctx, id, identity.ChainID(img.DiffIDs).String())
		if err != nil {
			return fmt.Errorf("prepare rootfs snapshot: %w", err)
		}
		*mounts = prepared
		c.Snapshotter = snapshotter
		c.SnapshotKey = id
		c.Image = img.Name
		return nil
	}
}

// lookup finds an image by name, ID, ID prefix, or "repo@digest" where
// the digest is the manifest of an image stored under a tag of repo (as
// the kubelet refers to images it pulled by tag).
func (s *imageService) lookup(ctx context.Context, ref string) (*images.Image, error) {
	img, err := s.images.Get(ctx, ref)
	if err == nil || !errdefs.IsNotFound(err) {
		return img, err
	}
	want, perr := images.ParseReference(ref)
	if perr != nil || want.Digest == "" {
		return nil, err
	}
	all, lerr := s.images.List(ctx)
	if lerr != nil {
		return nil, lerr
	}
	for _, candidate := range all {
		got, perr := images.ParseReference(candidate.Name)
		if perr == nil && got.Repository() == want.Repository() && candidate.Target.Digest.String() == want.Digest {
			return candidate, nil
		}
	}
	return nil, err
}

// criImage describes one image ID with every name it has.
func (s *imageService) criImage(names []*images.Image) *runtimeapi.Image {
	first := names[0]
	out := &runtimeapi.Image{
		Id:   first.ID.String(),
		Size: uint64(first.Size),
		Spec: &runtimeapi.ImageSpec{Image: first.ID.String()},
	}
	seenDigest := map[string]bool{}
	for _, n := range names {
		repo, _, hasDigest := strings.Cut(n.Name, "@")
		if !hasDigest {
			out.RepoTags = append(out.RepoTags, n.Name)
			if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
				repo = repo[:i]
			}
		}
		d := repo + "@" + n.Target.Digest.String()
		if !seenDigest[d] {
			seenDigest[d] = true
			out.RepoDigests = append(out.RepoDigests, d)
		}
		if n.Name == s.pinned {
			out.Pinned = true
		}
	}
	uid, username := imageUser(first.Config.User)
	if uid != nil {
		out.Uid = &runtimeapi.Int64Value{Value: *uid}
	}
	out.Username = username
	return out
}

// imageUser splits an image's USER into a numeric uid or a user name;
// the group part does not matter to the CRI.
func imageUser(user string) (*int64, string) {
	name, _, _ := strings.Cut(user, ":")
	if name == "" {
		return nil, ""
	}
	if uid, err := strconv.ParseInt(name, 10, 64); err == nil {
		return &uid, ""
	}
	return nil, name
}

// groupByID groups image records by image ID, keeping the list's order.
func groupByID(all []*images.Image) [][]*images.Image {
	var order []string
	groups := map[string][]*images.Image{}
	for _, img := range all {
		id := img.ID.String()
		if _, ok := groups[id]; !ok {
			order = append(order, id)
		}
		groups[id] = append(groups[id], img)
	}
	out := make([][]*images.Image, 0, len(order))
	for _, id := range order {
		out = append(out, groups[id])
	}
	return out
}

// namesOf returns every image record with the same ID as ref's image.
func (s *imageService) namesOf(ctx context.Context, ref string) ([]*images.Image, error) {
	img, err := s.lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	// Names of one image share its manifest; filtering on it keeps
	// ImageStatus from describing every image in the store.
	all, err := s.images.List(ctx, fmt.Sprintf("target.digest==%s", img.Target.Digest))
	if err != nil {
		return nil, err
	}
	var out []*images.Image
	for _, i := range all {
		if i.ID == img.ID {
			out = append(out, i)
		}
	}
	if len(out) == 0 {
		out = []*images.Image{img}
	}
	return out, nil
}
