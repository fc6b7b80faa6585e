package testenv

import (
	"reflect"
	"testing"
)

func TestSplitRule(t *testing.T) {
	got := splitRule(`POSTROUTING -s 10.4.0.7/32 -m comment --comment "name: \"kctr-bridge\" id: \"3094\"" -j CNI-ba1a`)
	want := []string{"POSTROUTING", "-s", "10.4.0.7/32", "-m", "comment", "--comment", `name: "kctr-bridge" id: "3094"`, "-j", "CNI-ba1a"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestIsBridgeMasqChain(t *testing.T) {
	for name, want := range map[string]bool{"CNI-5d8f7e0c8125ad1e8efd8223": true, "CNI-DN-5d8f": false, "CNI-HOSTPORT-DNAT": false, "CNI-": false, "DOCKER": false} {
		if got := isBridgeMasqChain(name); got != want {
			t.Errorf("isBridgeMasqChain(%q) = %v", name, got)
		}
	}
}
