package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kctr/kctr/images"
)

func TestParseKeyValues(t *testing.T) {
	got, err := parseKeyValues([]string{"a=1", "b=", "c=x=y"}, "--label")
	if err != nil {
		t.Fatal(err)
	}
	if got["a"] != "1" || got["b"] != "" || got["c"] != "x=y" {
		t.Fatalf("got %v", got)
	}
	if _, err := parseKeyValues([]string{"=v"}, "--label"); err == nil || !strings.Contains(err.Error(), "--label") {
		t.Fatalf("err %v, want one naming --label", err)
	}
}

func TestImageRows(t *testing.T) {
	created := time.Now().Add(-3 * time.Hour)
	img := &images.Image{
		Name:     "docker.io/library/busybox:1.36",
		Target:   ocispec.Descriptor{Digest: digest.FromString("manifest")},
		ID:       digest.FromString("config"),
		Size:     2 << 20,
		Created:  &created,
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
	}
	row := newImageRow(img, false)
	if row.Repository != "busybox" || row.Tag != "1.36" || len(row.ID) != 12 || row.Platform != "linux/amd64" || row.Size != "2.0 MiB" || row.CreatedSince != "3 hours ago" {
		t.Fatalf("row %+v", row)
	}
	var out bytes.Buffer
	if err := printImages(&out, []imageRow{row}, imagesView{digests: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "DIGEST") || !strings.Contains(out.String(), img.Target.Digest.String()) {
		t.Fatalf("table with digests:\n%s", out.String())
	}
	out.Reset()
	if err := printImages(&out, []imageRow{row}, imagesView{format: "{{.Nope}}"}); err == nil {
		t.Fatal("a template naming an unknown field succeeded")
	}
}

func TestHumanSize(t *testing.T) {
	for in, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 30: "5.0 GiB"} {
		if got := humanSize(in); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", in, got, want)
		}
	}
}
