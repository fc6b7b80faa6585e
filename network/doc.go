// Package network gives pod sandboxes their network: a named network
// namespace under a state directory, its loopback brought up over netlink
// (what CNI's loopback plugin would do, without a process per pod), and CNI
// ADD/DEL through go-cni.
package network
