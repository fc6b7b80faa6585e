// Package crilog writes container logs in the CRI log format
// ("<RFC3339Nano> <stdout|stderr> <P|F> <message>") from a process the shim
// starts through containerd's binary:// log driver, so logging goes on
// while the program that started the container is gone. kcrid and kctr both
// use it; both read the files back with k8s.io/cri-client/pkg/logs.
package crilog
