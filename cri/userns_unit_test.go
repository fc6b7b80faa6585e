package cri

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestRuncFeatures: the probes trust only a `features` answer listing the
// user namespace, or the rro mount option.
func TestRuncFeatures(t *testing.T) {
	dir := t.TempDir()
	fake := func(name, script string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name, script string
		userns, rro  bool
	}{
		{"userns", `echo '{"linux": {"namespaces": ["mount", "user", "pid"]}, "mountOptions": ["ro", "rro"]}'`, true, true},
		{"no-userns", `echo '{"linux": {"namespaces": ["mount", "pid"]}, "mountOptions": ["ro"]}'`, false, false},
		{"not-linux", `echo '{"ociVersionMax": "1.0.2"}'`, false, false},
		{"no-features-command", `echo 'No help topic for features' >&2; exit 3`, false, false},
		{"garbage", `echo not json`, false, false},
	} {
		features, err := readRuncFeatures(ctx, fake(tc.name, tc.script))
		if err := runtimeSupportsUserNamespaces(features, err); (err == nil) != tc.userns {
			t.Errorf("%s: user namespaces: %v, want ok=%v", tc.name, err, tc.userns)
		}
		if got := recursiveReadOnlyMounts(ctx, features); got != tc.rro && kernelAtLeast(5, 12) {
			t.Errorf("%s: recursive read-only mounts = %v, want %v", tc.name, got, tc.rro)
		}
	}
	features, err := readRuncFeatures(ctx, filepath.Join(dir, "missing"))
	if err := runtimeSupportsUserNamespaces(features, err); err == nil {
		t.Error("a missing runtime binary supports user namespaces")
	}
}

func TestRootfsRemapWith(t *testing.T) {
	for _, tc := range []struct {
		caps  []string
		remap string // "" = unsupported
	}{
		{nil, rootfsRemapByChownCopy},                                                 // containerd 1.6 overlayfs
		{[]string{"rebase"}, rootfsRemapByChownCopy},                                  // no remapping of its own
		{[]string{"remap-ids", "only-remap-ids", "rebase"}, rootfsRemapBySnapshotter}, // 2.x, idmapped overlay
		{[]string{"remap-ids"}, rootfsRemapBySnapshotter},                             // 2.x with slow_chown
		{[]string{"only-remap-ids"}, ""},                                              // 2.x, kernel without idmapped overlay
	} {
		u := rootfsRemapWith("overlayfs", tc.caps)
		if u.RootfsRemap != tc.remap || u.supported() != (tc.remap != "") {
			t.Errorf("caps %v: %+v, want remap %q", tc.caps, u, tc.remap)
		}
	}
	var unprobed *usernsSupport
	if unprobed.supported() {
		t.Error("a runtime that was never probed supports user namespaces")
	}
}

func TestContainerUserns(t *testing.T) {
	mapping := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 65536, Length: 65536}}
	podUserns := &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: mapping, Gids: mapping}
	pod := func(userns *runtimeapi.UserNamespace) *runtimeapi.PodSandboxConfig {
		return &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: userns},
		}}}
	}
	ctr := func(ns *runtimeapi.NamespaceOption, mounts ...*runtimeapi.Mount) *runtimeapi.ContainerConfig {
		return &runtimeapi.ContainerConfig{Mounts: mounts, Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: ns},
		}}
	}
	for _, tc := range []struct {
		name    string
		pod     *runtimeapi.PodSandboxConfig
		ctr     *runtimeapi.ContainerConfig
		joins   bool
		invalid bool
	}{
		{"host pod, no options", pod(nil), ctr(nil), false, false},
		{"host pod, NODE", pod(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}), ctr(&runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}}), false, false},
		{"host pod, container asks POD", pod(nil), ctr(&runtimeapi.NamespaceOption{UsernsOptions: podUserns}), false, true},
		{"userns pod, no options", pod(podUserns), ctr(nil), true, false},
		{"userns pod, same options", pod(podUserns), ctr(&runtimeapi.NamespaceOption{UsernsOptions: podUserns}), true, false},
		{"userns pod, container asks NODE", pod(podUserns), ctr(&runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}}), false, true},
		{"userns pod, host pid", pod(podUserns), ctr(&runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE}), false, true},
		{"userns pod, idmapped mount", pod(podUserns), ctr(nil, &runtimeapi.Mount{ContainerPath: "/data", HostPath: "/tmp", UidMappings: mapping}), false, true},
		{"userns pod, plain mount", pod(podUserns), ctr(nil, &runtimeapi.Mount{ContainerPath: "/data", HostPath: "/tmp"}), true, false},
	} {
		u, err := containerUserns(tc.pod, tc.ctr)
		if errdefs.IsInvalidArgument(err) != tc.invalid || (!tc.invalid && err != nil) {
			t.Errorf("%s: %v, want invalid=%v", tc.name, err, tc.invalid)
			continue
		}
		if (u != nil) != tc.joins {
			t.Errorf("%s: joins the pod's user namespace = %v, want %v", tc.name, u != nil, tc.joins)
		}
	}
}

// TestPodUsernsSpec: the pause container creates the user namespace, the
// others join it by the pause's pid, all with the pod's mappings.
func TestPodUsernsSpec(t *testing.T) {
	mapping := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 65536, Length: 65536}}
	u, err := parsePodUserns(&runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: mapping, Gids: mapping}})
	if err != nil {
		t.Fatal(err)
	}
	want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 65536, Size: 65536}}
	for _, tc := range []struct{ path, desc string }{{"", "pause"}, {"/proc/42/ns/user", "container"}} {
		s := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.UserNamespace, Path: "/stale"}, {Type: specs.PIDNamespace}}}}
		opt := u.sandboxSpecOpt()
		if tc.path != "" {
			opt = u.containerSpecOpt(42)
		}
		if err := opt(context.Background(), nil, nil, s); err != nil {
			t.Fatal(err)
		}
		var users []string
		for _, ns := range s.Linux.Namespaces {
			if ns.Type == specs.UserNamespace {
				users = append(users, ns.Path)
			}
		}
		if strings.Join(users, ",") != tc.path || len(users) != 1 {
			t.Errorf("%s: user namespaces %q, want one at %q", tc.desc, users, tc.path)
		}
		if len(s.Linux.UIDMappings) != 1 || s.Linux.UIDMappings[0] != want[0] || len(s.Linux.GIDMappings) != 1 || s.Linux.GIDMappings[0] != want[0] {
			t.Errorf("%s: mappings %v %v, want %v", tc.desc, s.Linux.UIDMappings, s.Linux.GIDMappings, want)
		}
	}
}
