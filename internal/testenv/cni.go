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

// RemoveNetworkRules deletes the nat rules CNI plugins made for network
// (their comments name it), then the chains those rules lived in. Used when
// a test ends with containers whose CNI DEL never ran, e.g. ones the daemon
// dropped in Stop.
func RemoveNetworkRules(network string) error {
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S").Output()
	if err != nil {
		return fmt.Errorf("iptables -t nat -S: %w", err)
	}
	marker := fmt.Sprintf(`name: \"%s\"`, network)
	chains := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "-A ") || !strings.Contains(line, marker) {
			continue
		}
		f := strings.Fields(line)
		chains[f[1]] = true
		for i, w := range f {
			if w == "-j" && i+1 < len(f) && strings.HasPrefix(f[i+1], "CNI-") && !strings.HasPrefix(f[i+1], "CNI-HOSTPORT") {
				chains[f[i+1]] = true
			}
		}
		// iptables -S prints the rule the way -D takes it back.
		args := append([]string{"-w", "-t", "nat", "-D"}, splitRule(line[len("-A "):])...)
		_ = exec.Command("iptables", args...).Run()
	}
	for chain := range chains {
		if !strings.HasPrefix(chain, "CNI-") || strings.HasPrefix(chain, "CNI-HOSTPORT") {
			continue
		}
		_ = exec.Command("iptables", "-w", "-t", "nat", "-F", chain).Run()
		_ = exec.Command("iptables", "-w", "-t", "nat", "-X", chain).Run()
	}
	return nil
}

// splitRule splits an iptables -S rule into arguments, keeping quoted
// comments whole and unescaping them.
func splitRule(rule string) []string {
	var args []string
	var cur strings.Builder
	inQuote, escaped, any := false, false, false
	for _, r := range rule {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped = true
		case r == '"':
			inQuote, any = !inQuote, true
		case r == ' ' && !inQuote:
			if cur.Len() > 0 || any {
				args = append(args, cur.String())
			}
			cur.Reset()
			any = false
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 || any {
		args = append(args, cur.String())
	}
	return args
}
