package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
)

// Namespace returns a containerd namespace name unique to this test run, so
// tests sharing one daemon never see each other's images or containers.
// Containerd.Stop empties every namespace, this one included.
func Namespace(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '-'
	}, t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	return strings.Trim(name, "-") + "-" + hex.EncodeToString(suffix)
}
