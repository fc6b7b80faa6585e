package criclient

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListImages lists images, optionally only those matching ref
// (crictl images REPOSITORY[:TAG]).
func (c *Client) ListImages(ctx context.Context, ref string) ([]*runtimeapi.Image, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	req := &runtimeapi.ListImagesRequest{}
	if ref != "" {
		req.Filter = &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: ref}}
	}
	r, err := c.Image.ListImages(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", rpcErr(err))
	}
	// Some runtimes (containerd) ignore the filter: apply it here too.
	var imgs []*runtimeapi.Image
	for _, img := range r.GetImages() {
		if ref == "" || MatchesImage(img, ref) {
			imgs = append(imgs, img)
		}
	}
	slices.SortStableFunc(imgs, func(a, b *runtimeapi.Image) int {
		return cmp.Compare(sortKey(a), sortKey(b))
	})
	return imgs, nil
}

func sortKey(img *runtimeapi.Image) string {
	if t := img.GetRepoTags(); len(t) > 0 {
		return t[0]
	}
	if d := img.GetRepoDigests(); len(d) > 0 {
		return d[0]
	}
	return img.GetId()
}

// MatchesImage reports whether ref names img: its ID (or a prefix of the
// hex), a repo digest, a tag, or a repository without tag (any tag). Short
// Docker Hub names (busybox, library/busybox) match their docker.io form.
func MatchesImage(img *runtimeapi.Image, ref string) bool {
	id := img.GetId()
	hex := strings.TrimPrefix(id, "sha256:")
	if ref == id || (len(ref) >= 4 && strings.HasPrefix(hex, strings.TrimPrefix(ref, "sha256:"))) {
		return true
	}
	for _, cand := range refForms(ref) {
		for _, d := range img.GetRepoDigests() {
			if d == cand {
				return true
			}
		}
		for _, t := range img.GetRepoTags() {
			if t == cand {
				return true
			}
			if repo, _, ok := cutTag(t); ok && repo == cand {
				return true
			}
		}
	}
	return false
}

// cutTag splits name:tag; a colon inside the registry host is not a tag.
func cutTag(s string) (repo, tag string, ok bool) {
	i := strings.LastIndex(s, ":")
	if i < 0 || strings.Contains(s[i:], "/") {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// refForms returns ref and its docker.io-normalised spellings.
func refForms(ref string) []string {
	first, _, hasSlash := strings.Cut(ref, "/")
	switch {
	case !hasSlash:
		return []string{ref, "docker.io/library/" + ref}
	case !strings.ContainsAny(first, ".:") && first != "localhost":
		return []string{ref, "docker.io/" + ref}
	}
	return []string{ref}
}

// ImageStatus returns an image's status. A missing image is not an
// error: the response's Image is nil.
func (c *Client) ImageStatus(ctx context.Context, ref string, verbose bool) (*runtimeapi.ImageStatusResponse, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	r, err := c.Image.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}, Verbose: verbose})
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", ref, rpcErr(err))
	}
	return r, nil
}

// PullOptions are the inputs of pull.
type PullOptions struct {
	Image string
	Auth  *runtimeapi.AuthConfig
	Pod   *runtimeapi.PodSandboxConfig
	// Annotations go into the ImageSpec.
	Annotations map[string]string
	// Timeout bounds the pull; 0 means the long-call default.
	Timeout time.Duration
	// Progress, if set, is called about every Interval while waiting.
	Progress func(elapsed time.Duration)
	Interval time.Duration
}

// PullImage pulls an image and returns the image reference the runtime
// reports.
func (c *Client) PullImage(ctx context.Context, o PullOptions) (string, error) {
	var cctx context.Context
	var cancel context.CancelFunc
	if o.Timeout > 0 {
		cctx, cancel = context.WithTimeout(ctx, o.Timeout)
	} else {
		cctx, cancel = c.long(ctx, 0)
	}
	defer cancel()
	type result struct {
		ref string
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := c.Image.PullImage(cctx, &runtimeapi.PullImageRequest{
			Image:         &runtimeapi.ImageSpec{Image: o.Image, Annotations: o.Annotations},
			Auth:          o.Auth,
			SandboxConfig: o.Pod,
		})
		done <- result{r.GetImageRef(), err}
	}()
	interval := o.Interval
	if interval <= 0 {
		interval = time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	start := time.Now()
	for {
		select {
		case r := <-done:
			if r.err != nil {
				return "", fmt.Errorf("pull image %q: %w", o.Image, rpcErr(r.err))
			}
			return r.ref, nil
		case <-tick.C:
			if o.Progress != nil {
				o.Progress(time.Since(start))
			}
		}
	}
}

// ParseAuth builds registry credentials from crictl's --creds
// (USER[:PASSWORD]) or --auth (base64 of USER:PASSWORD); nil if neither.
func ParseAuth(creds, auth string) (*runtimeapi.AuthConfig, error) {
	switch {
	case creds != "" && auth != "":
		return nil, errors.New("--creds and --auth are mutually exclusive")
	case creds != "":
		user, pass, _ := strings.Cut(creds, ":")
		if user == "" {
			return nil, errors.New("--creds: username is empty (want USERNAME[:PASSWORD])")
		}
		return &runtimeapi.AuthConfig{Username: user, Password: pass}, nil
	case auth != "":
		if _, err := base64.StdEncoding.DecodeString(auth); err != nil {
			return nil, fmt.Errorf("--auth: not base64: %v", err)
		}
		return &runtimeapi.AuthConfig{Auth: auth}, nil
	}
	return nil, nil
}

// RemoveImage removes an image and returns the names it had (tags, or
// digests for an image pulled by digest), for "Deleted:" lines.
func (c *Client) RemoveImage(ctx context.Context, ref string) ([]string, error) {
	st, err := c.ImageStatus(ctx, ref, false)
	if err != nil {
		return nil, err
	}
	if st.GetImage() == nil {
		return nil, fmt.Errorf("image %q: no such image", ref)
	}
	cctx, cancel := c.long(ctx, 0)
	defer cancel()
	if _, err := c.Image.RemoveImage(cctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: st.GetImage().GetId()}}); err != nil {
		return nil, fmt.Errorf("remove image %q: %w", ref, rpcErr(err))
	}
	names := st.GetImage().GetRepoTags()
	if len(names) == 0 {
		names = st.GetImage().GetRepoDigests()
	}
	if len(names) == 0 {
		names = []string{st.GetImage().GetId()}
	}
	return names, nil
}

// UnusedImages returns the IDs of images no container uses (rmi --prune).
// Pinned images (the sandbox image) are kept.
func (c *Client) UnusedImages(ctx context.Context) ([]string, error) {
	imgs, err := c.ListImages(ctx, "")
	if err != nil {
		return nil, err
	}
	ctrs, err := c.ListContainers(ctx, ContainerFilter{All: true})
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, ctr := range ctrs {
		used[ctr.GetImageRef()] = true
		used[ctr.GetImageId()] = true
		used[ctr.GetImage().GetImage()] = true
	}
	var out []string
	for _, img := range imgs {
		if img.GetPinned() || used[img.GetId()] {
			continue
		}
		inUse := false
		for _, n := range append(img.GetRepoTags(), img.GetRepoDigests()...) {
			inUse = inUse || used[n]
		}
		if !inUse {
			out = append(out, img.GetId())
		}
	}
	return out, nil
}

// ImageFsInfo returns the runtime's image filesystem usage.
func (c *Client) ImageFsInfo(ctx context.Context) (*runtimeapi.ImageFsInfoResponse, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	r, err := c.Image.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		return nil, fmt.Errorf("image filesystem info: %w", rpcErr(err))
	}
	return r, nil
}

// ImageListOutput adds the images table switches to ListOutput.
type ImageListOutput struct {
	ListOutput
	Digests bool
	Pinned  bool
}

// WriteImages writes images as crictl images does.
func WriteImages(w io.Writer, imgs []*runtimeapi.Image, o ImageListOutput) error {
	if o.Format != FormatTable && o.Format != "" {
		return WriteMessage(w, &runtimeapi.ListImagesResponse{Images: imgs}, o.Format, o.Template)
	}
	if o.Quiet {
		for _, img := range imgs {
			fmt.Fprintln(w, img.GetId())
		}
		return nil
	}
	if o.Verbose {
		for _, img := range imgs {
			writeImageVerbose(w, img)
		}
		return nil
	}
	tw := newTable(w)
	head := []string{"IMAGE", "TAG"}
	if o.Digests {
		head = append(head, "DIGEST")
	}
	head = append(head, "IMAGE ID", "SIZE")
	if o.Pinned {
		head = append(head, "PINNED")
	}
	row(tw, head...)
	for _, img := range imgs {
		repo, digest := repoDigest(img.GetRepoDigests())
		id := img.GetId()
		if !o.NoTrunc {
			id = TruncID(id, "sha256:")
			digest = TruncID(digest, "sha256:")
		}
		for _, rt := range repoTags(img.GetRepoTags(), repo) {
			cols := []string{rt[0], rt[1]}
			if o.Digests {
				cols = append(cols, digest)
			}
			cols = append(cols, id, HumanSize(float64(img.GetSize())))
			if o.Pinned {
				cols = append(cols, fmt.Sprint(img.GetPinned()))
			}
			row(tw, cols...)
		}
	}
	return tw.Flush()
}

func writeImageVerbose(w io.Writer, img *runtimeapi.Image) {
	fmt.Fprintf(w, "ID: %s\n", img.GetId())
	for _, t := range img.GetRepoTags() {
		fmt.Fprintf(w, "RepoTags: %s\n", t)
	}
	for _, d := range img.GetRepoDigests() {
		fmt.Fprintf(w, "RepoDigests: %s\n", d)
	}
	if img.GetSize() != 0 {
		fmt.Fprintf(w, "Size: %d\n", img.GetSize())
	}
	if img.GetUid() != nil {
		// crictl prints the wrapper message in text form.
		fmt.Fprintf(w, "Uid: value:%d\n", img.GetUid().GetValue())
	}
	if img.GetUsername() != "" {
		fmt.Fprintf(w, "Username: %v\n", img.GetUsername())
	}
	if img.GetPinned() {
		fmt.Fprintf(w, "Pinned: %v\n", img.GetPinned())
	}
	fmt.Fprintln(w)
}

const none = "<none>"

// repoDigest splits the first repo digest into repository and digest.
func repoDigest(ds []string) (repo, digest string) {
	if len(ds) == 0 {
		return none, none
	}
	repo, digest, ok := strings.Cut(ds[0], "@")
	if !ok {
		return none, none
	}
	return repo, digest
}

// repoTags splits tags into (repository, tag) pairs; an untagged image
// shows its digest repository with tag <none>.
func repoTags(tags []string, repo string) [][2]string {
	if len(tags) == 0 {
		return [][2]string{{repo, none}}
	}
	out := make([][2]string, 0, len(tags))
	for _, t := range tags {
		repo, tag, ok := cutTag(t)
		if !ok {
			tag = none
		}
		out = append(out, [2]string{repo, tag})
	}
	return out
}
