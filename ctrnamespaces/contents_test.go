package ctrnamespaces

import "testing"

func TestContentsString(t *testing.T) {
	tests := []struct {
		in   Contents
		want string
	}{
		{Contents{}, ""},
		{Contents{Images: 1}, "1 image"},
		{Contents{Containers: 2, Images: 1, Blobs: 3, Leases: 1, Snapshots: map[string]int{"overlayfs": 4, "native": 1}},
			"2 containers, 1 image, 1 snapshot (native), 4 snapshots (overlayfs), 3 content blobs, 1 lease"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.in, got, tt.want)
		}
		if tt.in.Empty() != (tt.want == "") {
			t.Errorf("%+v.Empty() = %v", tt.in, tt.in.Empty())
		}
	}
}
