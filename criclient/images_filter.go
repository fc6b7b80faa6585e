package criclient

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// FilterImages applies crictl's images --filter conditions in order:
//
//	dangling=true|false     images without / with tags
//	reference=REGEXP        repository name matches
//	before=IMAGE, since=IMAGE
//	                        images after / before IMAGE in the listing
//	                        (CRI has no image creation time; like crictl,
//	                        the list order stands in for it). IMAGE is
//	                        name:tag, an ID (prefix) or name@digest.
func FilterImages(imgs []*runtimeapi.Image, filters []string) ([]*runtimeapi.Image, error) {
	out := slices.Clone(imgs)
	for _, f := range filters {
		key, val, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("invalid --filter %q: want key=value", f)
		}
		switch key {
		case "dangling":
			if val != "true" && val != "false" {
				return nil, fmt.Errorf("invalid --filter %q: dangling is true or false", f)
			}
			out = slices.DeleteFunc(out, func(img *runtimeapi.Image) bool { return (len(img.GetRepoTags()) == 0) != (val == "true") })
		case "reference":
			re, err := regexp.Compile(val)
			if err != nil {
				return nil, fmt.Errorf("invalid --filter %q: %v", f, err)
			}
			out = slices.DeleteFunc(out, func(img *runtimeapi.Image) bool {
				for _, n := range repoNames(img) {
					if n == val || re.MatchString(n) {
						return false
					}
				}
				return true
			})
		case "since":
			i := slices.IndexFunc(out, func(img *runtimeapi.Image) bool { return isImage(img, val) })
			if i >= 0 {
				out = out[:i]
			}
		case "before":
			if i := slices.IndexFunc(out, func(img *runtimeapi.Image) bool { return isImage(img, val) }); i >= 0 {
				out = out[i+1:]
			}
		default:
			return nil, fmt.Errorf("unknown filter %q (use dangling, reference, before or since)", key)
		}
	}
	return out, nil
}

// repoNames returns the repositories an image is known under.
func repoNames(img *runtimeapi.Image) []string {
	var names []string
	for _, t := range img.GetRepoTags() {
		repo, _, _ := cutTag(t)
		names = append(names, repo)
	}
	for _, d := range img.GetRepoDigests() {
		repo, _, _ := strings.Cut(d, "@")
		names = append(names, repo)
	}
	return names
}

// isImage matches name:tag, an ID or ID prefix, or name@digest (prefix).
func isImage(img *runtimeapi.Image, ref string) bool {
	switch {
	case strings.Contains(ref, "@"):
		for _, d := range img.GetRepoDigests() {
			if strings.HasPrefix(d, ref) {
				return true
			}
		}
		return false
	case strings.HasPrefix(ref, "sha256:") || !strings.Contains(ref, ":"):
		return strings.HasPrefix(img.GetId(), ref) || strings.HasPrefix(strings.TrimPrefix(img.GetId(), "sha256:"), ref)
	}
	return slices.Contains(img.GetRepoTags(), ref)
}
