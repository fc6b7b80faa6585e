package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// RemoveBridge deletes a test's bridge device and the host-local IPAM
// directory of its network, so the next run starts clean. A bridge that is
// not there is not an error.
func RemoveBridge(bridge, networkName string) error {
	if out, err := exec.Command("ip", "link", "show", bridge).CombinedOutput(); err != nil {
		_ = out
	} else if out, err := exec.Command("ip", "link", "del", bridge).CombinedOutput(); err != nil {
		return fmt.Errorf("ip link del %s: %v: %s", bridge, err, out)
	}
	if networkName != "" {
		if err := os.RemoveAll(filepath.Join("/var/lib/cni/networks", networkName)); err != nil {
			return err
		}
	}
	return nil
}

// PruneEmptyCNIChains drops the empty CNI-<hash> nat chains Debian's bridge
// plugin (1.1.1) leaves behind for every torn-down container. Only chains
// named exactly CNI-<hex> go, and only when empty: portmap's CNI-DN-* and
// CNI-HOSTPORT-* chains are created empty and filled a moment later, so
// pruning those would break a container being set up by a test running
// beside this one. Call it when a test package ends.
func PruneEmptyCNIChains() error {
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S").Output()
	if err != nil {
		return fmt.Errorf("iptables -t nat -S: %w", err)
	}
	rules := map[string]int{}
	var chains []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !isBridgeMasqChain(f[1]) {
			continue
		}
		switch f[0] {
		case "-N":
			chains = append(chains, f[1])
		case "-A":
			rules[f[1]]++
		}
	}
	for _, chain := range chains {
		if rules[chain] == 0 {
			_ = exec.Command("iptables", "-w", "-t", "nat", "-X", chain).Run()
		}
	}
	return nil
}

func isBridgeMasqChain(name string) bool {
	hash, ok := strings.CutPrefix(name, "CNI-")
	return ok && hash != "" && strings.Trim(hash, "0123456789abcdef") == ""
}
