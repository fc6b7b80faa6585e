package cri

import "strings"

// matchID: an empty filter matches everything; otherwise the ID must start
// with it (crictl passes truncated IDs).
func matchID(filter, id string) bool {
	return filter == "" || strings.HasPrefix(id, filter)
}

// matchLabels: every selector entry must be present with the same value.
func matchLabels(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
