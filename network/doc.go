// Package network gives pod sandboxes their network: a named network
// namespace under a state directory and CNI ADD/DEL through go-cni, with the
// loopback network always attached first.
package network
