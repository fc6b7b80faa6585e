package images

import (
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
)

// Reference is an image reference in the fully qualified form containerd
// stores images under, e.g. "docker.io/library/busybox:latest".
type Reference struct {
	// Domain is the registry host, with a port if one was given.
	Domain string
	// Path is the repository path inside the registry ("library/busybox").
	Path string
	// Tag is empty when the reference is pinned by digest only.
	Tag string
	// Digest is empty unless the reference names one.
	Digest string
}

// ParseReference normalises a user-supplied reference the way Docker does:
// "busybox" becomes "docker.io/library/busybox:latest". A reference with both
// a tag and a digest keeps the tag for display but resolves by digest.
func ParseReference(s string) (Reference, error) {
	if strings.TrimSpace(s) == "" {
		return Reference{}, fmt.Errorf("image reference is empty: %w", errdefs.ErrInvalidArgument)
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Reference{}, fmt.Errorf("invalid image reference %q: %v: %w", s, err, errdefs.ErrInvalidArgument)
	}
	ref := Reference{Domain: reference.Domain(named), Path: reference.Path(named)}
	if tagged, ok := named.(reference.Tagged); ok {
		ref.Tag = tagged.Tag()
	}
	if digested, ok := named.(reference.Digested); ok {
		ref.Digest = digested.Digest().String()
	}
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = "latest"
	}
	return ref, nil
}

// Repository is the reference without tag or digest.
func (r Reference) Repository() string {
	return r.Domain + "/" + r.Path
}

// String is the name containerd stores the image under. A digest wins over a
// tag because that is what is actually fetched.
func (r Reference) String() string {
	if r.Digest != "" {
		return r.Repository() + "@" + r.Digest
	}
	return r.Repository() + ":" + r.Tag
}

// Familiar is the short form users type ("busybox:latest" for Docker Hub's
// library images), used in CLI output.
func (r Reference) Familiar() string {
	named, err := reference.ParseNormalizedNamed(r.String())
	if err != nil {
		return r.String()
	}
	return reference.FamiliarString(named)
}

// NormalizeName is ParseReference(s).String(), for callers that only need
// the stored name.
func NormalizeName(s string) (string, error) {
	ref, err := ParseReference(s)
	if err != nil {
		return "", err
	}
	return ref.String(), nil
}
