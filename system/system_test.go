package system

import (
	"os"
	"testing"
)

func TestDangling(t *testing.T) {
	for name, want := range map[string]bool{
		"docker.io/library/busybox:latest": false,
		"127.0.0.1:5000/app@sha256:0000000000000000000000000000000000000000000000000000000000000000": false,
		"":                true,
		"Dangling-Import": true,
		"<none>@<none>":   true,
	} {
		if got := Dangling(name); got != want {
			t.Errorf("Dangling(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestCgroupVersion(t *testing.T) {
	want := "1"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		want = "2"
	}
	if got := CgroupVersion(); got != want {
		t.Errorf("CgroupVersion() = %q, want %q", got, want)
	}
}

func TestMemTotal(t *testing.T) {
	if _, err := os.Stat("/proc/meminfo"); err != nil {
		t.Skip("no /proc/meminfo")
	}
	if memTotal() <= 0 {
		t.Error("memTotal() found no MemTotal line")
	}
}
