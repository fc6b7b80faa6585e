// Package ctrnamespaces lists, creates, inspects and removes containerd
// namespaces for kctr. Removing one that still holds objects fails with an
// error that counts what is left, kind by kind.
package ctrnamespaces
