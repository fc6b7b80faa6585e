package cri

import (
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// defaultInterface is the pod's interface CNI plugins create.
const defaultInterface = "eth0"

// interfaceCounters are one interface's cumulative counters.
type interfaceCounters struct {
	name                                    string
	rxBytes, rxPackets, rxErrors, rxDropped uint64
	txBytes, txPackets, txErrors, txDropped uint64
}

// readInterfaceCounters lists the interfaces of the network namespace at
// netnsPath, loopback left out, through a netlink socket opened in that
// namespace: no thread has to switch namespaces and no sysfs has to be
// mounted there.
func readInterfaceCounters(netnsPath string) ([]interfaceCounters, error) {
	ns, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", netnsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", netnsPath, err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list interfaces in %s: %w", netnsPath, err)
	}
	var out []interfaceCounters
	for _, l := range links {
		a := l.Attrs()
		if a == nil || a.Flags&net.FlagLoopback != 0 {
			continue
		}
		c := interfaceCounters{name: a.Name}
		if s := a.Statistics; s != nil {
			c.rxBytes, c.rxPackets, c.rxErrors, c.rxDropped = s.RxBytes, s.RxPackets, s.RxErrors, s.RxDropped
			c.txBytes, c.txPackets, c.txErrors, c.txDropped = s.TxBytes, s.TxPackets, s.TxErrors, s.TxDropped
		}
		out = append(out, c)
	}
	return out, nil
}

// networkUsage is the CRI form: every interface, eth0 (else the first) as
// the default one.
func networkUsage(ifaces []interfaceCounters, at time.Time) *runtimeapi.NetworkUsage {
	u := &runtimeapi.NetworkUsage{Timestamp: at.UnixNano()}
	for _, c := range ifaces {
		iu := &runtimeapi.NetworkInterfaceUsage{
			Name:     c.name,
			RxBytes:  &runtimeapi.UInt64Value{Value: c.rxBytes},
			RxErrors: &runtimeapi.UInt64Value{Value: c.rxErrors},
			TxBytes:  &runtimeapi.UInt64Value{Value: c.txBytes},
			TxErrors: &runtimeapi.UInt64Value{Value: c.txErrors},
		}
		u.Interfaces = append(u.Interfaces, iu)
		if c.name == defaultInterface {
			u.DefaultInterface = iu
		}
	}
	if u.DefaultInterface == nil && len(u.Interfaces) > 0 {
		u.DefaultInterface = u.Interfaces[0]
	}
	return u
}
