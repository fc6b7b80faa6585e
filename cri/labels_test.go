package cri

import (
	"strings"
	"testing"
)

func TestRecordLabels(t *testing.T) {
	got := recordLabels(
		map[string]string{"io.kubernetes.pod.name": "web", labelKind: "forged", "huge": strings.Repeat("x", 5000)},
		map[string]string{labelKind: kindContainer},
	)
	if got["io.kubernetes.pod.name"] != "web" || got[labelKind] != kindContainer {
		t.Fatalf("labels %v", got)
	}
	if _, ok := got["huge"]; ok {
		t.Fatal("a label over containerd's limit was kept")
	}
}
