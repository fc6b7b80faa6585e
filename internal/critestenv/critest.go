package critestenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Skip is critest's default -ginkgo.skip here: the specs this host cannot
// pass whatever the runtime.
//   - AppArmor and SELinux: neither is enabled on these hosts.
//   - "public image with digest": the image is pinned to a digest of
//     upstream content, which cannot exist offline.
//
// Everything else runs, NRI included when the runtime has an NRI socket to
// give critest (Args.NRISocket), and user namespaces.
const Skip = `AppArmor|SELinux|public image with digest`

// Args are the parts of a critest command line that vary between runs.
type Args struct {
	// Endpoint is the CRI socket, "unix:///path"; it serves both the
	// runtime and the image service.
	Endpoint string
	// NRISocket is the runtime's NRI socket; empty leaves critest's NRI
	// specs skipped (critest skips them without one).
	NRISocket string
	// Skip and Focus are ginkgo's regular expressions on spec names.
	Skip, Focus string
	// JSONReport, when set, is where ginkgo writes its JSON report, the
	// per-spec outcomes ReadReport reads.
	JSONReport string
	// Extra are further critest flags, e.g. "-websocket-exec".
	Extra []string
}

// Command is critest at path with args. Output is left to the caller.
func Command(path string, args Args) *exec.Cmd {
	argv := []string{"-runtime-endpoint", args.Endpoint, "-image-endpoint", args.Endpoint}
	if args.NRISocket != "" {
		argv = append(argv, "-nri-socket", args.NRISocket)
	}
	argv = append(argv, "-ginkgo.skip", args.Skip, "-ginkgo.focus", args.Focus, "-ginkgo.no-color")
	if args.JSONReport != "" {
		argv = append(argv, "-ginkgo.json-report", args.JSONReport)
	}
	return exec.Command(path, append(argv, args.Extra...)...)
}

// Conflist is a CNI network for critest's pods: a bridge with host-local
// IPAM keeping its state in ipamDir (not /var/lib/cni), no masquerade (so
// no nat chains to clean up), and portmap for the port-forward and
// host-port specs.
func Conflist(name, bridge, subnet, ipamDir string) string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0", "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]}`, name, bridge, subnet, ipamDir)
}

// SharedMemory is a snapshot of the host's 1 MiB SysV shared memory
// segments. critest's HostIpc specs make such segments on the host and
// never remove them; RemoveNew removes those made since the snapshot.
type SharedMemory map[string]bool

// SnapshotSharedMemory records the segments there are now.
func SnapshotSharedMemory() SharedMemory {
	return shmIDs()
}

// RemoveNew removes the 1 MiB segments that were not in the snapshot.
func (before SharedMemory) RemoveNew() {
	for id := range shmIDs() {
		if !before[id] {
			_ = exec.Command("ipcrm", "-m", id).Run()
		}
	}
}

// shmIDs are the host's SysV shared memory segments of 1 MiB.
func shmIDs() SharedMemory {
	ids := SharedMemory{}
	data, _ := os.ReadFile("/proc/sysvipc/shm")
	for _, line := range strings.Split(string(data), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 3 && f[3] == "1048576" {
			ids[f[1]] = true
		}
	}
	return ids
}
