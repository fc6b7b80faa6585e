package critestenv

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// critestTail is the end of a critest v1.37 run, as printed with
// -ginkgo.no-color.
const critestTail = `
Summarizing 2 Failures:
  [FAIL] [k8s.io] Image Manager [It] public image with tag should be pulled and removed [Conformance]
  sigs.k8s.io/cri-tools/pkg/validate/image.go:258
  [FAIL] [k8s.io] Container runtime should support basic operations on container [It] runtime should support stopping container [Conformance]
  sigs.k8s.io/cri-tools/pkg/validate/container.go:91

Ran 121 of 142 Specs in 151.733 seconds
FAIL! -- 119 Passed | 2 Failed | 0 Pending | 21 Skipped
--- FAIL: TestCRISuite (151.74s)
FAIL
`

func TestParseSummary(t *testing.T) {
	s, err := ParseSummary([]byte(critestTail))
	if err != nil {
		t.Fatal(err)
	}
	want := Summary{
		RanText: "Ran 121 of 142 Specs", CountsText: "119 Passed | 2 Failed | 0 Pending | 21 Skipped",
		Ran: 121, Total: 142, Passed: 119, Failed: 2, Pending: 0, Skipped: 21,
		Failures: []string{
			"[FAIL] [k8s.io] Image Manager [It] public image with tag should be pulled and removed [Conformance]",
			"[FAIL] [k8s.io] Container runtime should support basic operations on container [It] runtime should support stopping container [Conformance]",
		},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
}

func TestParseSummaryInterrupted(t *testing.T) {
	s, err := ParseSummary([]byte("Running Suite: CRI validation\n  [FAIL] [k8s.io] Streaming [It] exec\n"))
	if !errors.Is(err, ErrNoSummary) {
		t.Errorf("error %v, want ErrNoSummary", err)
	}
	if len(s.Failures) != 1 || s.Ran != 0 {
		t.Errorf("summary of an interrupted run: %+v", s)
	}
}

func TestReadReportAndPassDifferences(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.json")
	report := `[{"SuiteDescription": "CRI validation", "SpecReports": [
  {"ContainerHierarchyTexts": null, "LeafNodeText": "", "LeafNodeType": "BeforeSuite", "State": "passed"},
  {"ContainerHierarchyTexts": ["[k8s.io] Image Manager"], "LeafNodeText": "public image with tag should be pulled and removed", "LeafNodeType": "It", "State": "passed"},
  {"ContainerHierarchyTexts": ["[k8s.io] Streaming", "runtime should support streaming interfaces"], "LeafNodeText": "runtime should support exec", "LeafNodeType": "It", "State": "failed"},
  {"ContainerHierarchyTexts": ["[k8s.io] AppArmor"], "LeafNodeText": "should enforce", "LeafNodeType": "It", "State": "skipped"},
  {"ContainerHierarchyTexts": ["[k8s.io] AppArmor"], "LeafNodeText": "should enforce", "LeafNodeType": "It", "State": "skipped"}
]}]`
	if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	left, err := ReadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Outcomes{
		"[k8s.io] Image Manager public image with tag should be pulled and removed":                  Passed,
		"[k8s.io] Streaming runtime should support streaming interfaces runtime should support exec": Failed,
		"[k8s.io] AppArmor should enforce":                                                           Skipped,
		"[k8s.io] AppArmor should enforce (#2)":                                                      Skipped,
	}
	if !reflect.DeepEqual(left, want) {
		t.Fatalf("outcomes %v, want %v", left, want)
	}
	right := Outcomes{
		"[k8s.io] Image Manager public image with tag should be pulled and removed":                  Failed,
		"[k8s.io] Streaming runtime should support streaming interfaces runtime should support exec": Passed,
		"[k8s.io] AppArmor should enforce":                                                           Skipped,
		"[k8s.io] Only on the right":                                                                 Passed,
	}
	got := PassDifferences(left, right)
	wantDiffs := []Difference{
		{Spec: "[k8s.io] Image Manager public image with tag should be pulled and removed", Left: Passed, Right: Failed},
		{Spec: "[k8s.io] Only on the right", Left: "", Right: Passed},
		{Spec: "[k8s.io] Streaming runtime should support streaming interfaces runtime should support exec", Left: Failed, Right: Passed},
	}
	if !reflect.DeepEqual(got, wantDiffs) {
		t.Errorf("differences %+v\nwant %+v", got, wantDiffs)
	}
}
