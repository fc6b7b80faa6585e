// Package cri is kcrid's CRI v1 server: RuntimeService and ImageService
// implemented with containerd's Go client. Small parts (stores, network,
// images, log writing) are wired together by New; each RPC family has its
// own file.
package cri
