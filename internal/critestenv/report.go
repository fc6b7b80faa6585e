package critestenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Summary is what critest's output says at the end of a run.
type Summary struct {
	// RanText and CountsText are the lines' text as printed, e.g.
	// "Ran 123 of 142 Specs" and "123 Passed | 0 Failed | 0 Pending | 19
	// Skipped"; empty when critest did not get that far.
	RanText, CountsText string
	// Ran of Total specs; Passed, Failed, Pending and Skipped add up to
	// Total.
	Ran, Total                       int
	Passed, Failed, Pending, Skipped int
	// Failures are the "[FAIL] ..." lines of ginkgo's failure summary,
	// trimmed: one per failed spec, naming it and where it failed.
	Failures []string
}

var (
	ranLine    = regexp.MustCompile(`Ran (\d+) of (\d+) Specs`)
	countsLine = regexp.MustCompile(`(\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped`)
)

// ErrNoSummary means critest's output ends without its summary: it did not
// start (bad flags, endpoint not answering) or was stopped.
var ErrNoSummary = errors.New("critest output has no summary")

// ParseSummary reads critest's output. The fields it found are filled in
// even when it returns ErrNoSummary (e.g. [FAIL] lines of an interrupted
// run).
func ParseSummary(out []byte) (Summary, error) {
	var s Summary
	for _, line := range strings.Split(string(out), "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "[FAIL]") {
			s.Failures = append(s.Failures, line)
		}
	}
	ran := ranLine.FindSubmatch(out)
	counts := countsLine.FindSubmatch(out)
	if ran == nil || counts == nil {
		return s, ErrNoSummary
	}
	s.RanText, s.CountsText = string(ran[0]), string(counts[0])
	for i, field := range []*int{&s.Ran, &s.Total} {
		*field, _ = strconv.Atoi(string(ran[i+1])) // \d+ always parses
	}
	for i, field := range []*int{&s.Passed, &s.Failed, &s.Pending, &s.Skipped} {
		*field, _ = strconv.Atoi(string(counts[i+1]))
	}
	return s, nil
}

// Spec outcomes as ginkgo's JSON report spells them.
const (
	Passed  = "passed"
	Failed  = "failed"
	Skipped = "skipped"
	Pending = "pending"
)

// ginkgoReport is the part of ginkgo v2's JSON report (a list of suite
// reports) we read.
type ginkgoReport []struct {
	SpecReports []struct {
		ContainerHierarchyTexts []string
		LeafNodeText            string
		LeafNodeType            string
		State                   string
	}
}

// Outcomes maps each spec's full name (its containers' texts and its own,
// joined by spaces, as ginkgo prints it) to its state: Passed, Failed,
// Skipped, Pending, or another ginkgo state such as "interrupted".
type Outcomes map[string]string

// ReadReport reads the outcome of every spec from a JSON report written
// with -ginkgo.json-report (Args.JSONReport). Suite set-up nodes
// (BeforeSuite and the like) are not specs and are left out.
func ReadReport(path string) (Outcomes, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("critest report: %w", err)
	}
	var report ginkgoReport
	if err := json.Unmarshal(data, &report); err != nil {
		return nil, fmt.Errorf("critest report %s: %w", path, err)
	}
	outcomes := Outcomes{}
	for _, suite := range report {
		for _, spec := range suite.SpecReports {
			if spec.LeafNodeType != "It" {
				continue
			}
			name := strings.Join(append(append([]string{}, spec.ContainerHierarchyTexts...), spec.LeafNodeText), " ")
			// Two specs may read the same; keep both apart.
			unique := name
			for n := 2; outcomes[unique] != ""; n++ {
				unique = fmt.Sprintf("%s (#%d)", name, n)
			}
			outcomes[unique] = spec.State
		}
	}
	return outcomes, nil
}

// Difference is a spec that passed on one side and not on the other.
type Difference struct {
	Spec        string
	Left, Right string // the outcomes; "" for a spec one side never listed
}

// PassDifferences lists, sorted by spec name, the specs that passed in
// exactly one of left and right, with both outcomes.
func PassDifferences(left, right Outcomes) []Difference {
	names := map[string]bool{}
	for name := range left {
		names[name] = true
	}
	for name := range right {
		names[name] = true
	}
	var diffs []Difference
	for name := range names {
		if (left[name] == Passed) != (right[name] == Passed) {
			diffs = append(diffs, Difference{Spec: name, Left: left[name], Right: right[name]})
		}
	}
	sort.Slice(diffs, func(i, j int) bool { return diffs[i].Spec < diffs[j].Spec })
	return diffs
}
