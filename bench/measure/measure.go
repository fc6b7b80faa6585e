// Package measure times commands for the benchmarks under bench/ and
// summarises them the way we report them: medians and ratios, since single
// times on these shared machines mean little.
package measure

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// Command runs argv once and returns how long it took.
func Command(argv ...string) (time.Duration, error) {
	start := time.Now()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	elapsed := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return elapsed, nil
}

// Median of the samples.
func Median(samples []time.Duration) time.Duration {
	s := append([]time.Duration(nil), samples...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// Milliseconds as a float, for printing.
func Milliseconds(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Report prints one line per sample set and returns the medians.
func Report(name string, samples []time.Duration) time.Duration {
	m := Median(samples)
	all := make([]string, len(samples))
	for i, v := range samples {
		all[i] = fmt.Sprintf("%.0f", Milliseconds(v))
	}
	fmt.Printf("%-34s median %8.1f ms   (ms: %s)\n", name, Milliseconds(m), strings.Join(all, " "))
	return m
}

// Ratio prints a/b.
func Ratio(name string, a, b time.Duration) {
	fmt.Printf("%-34s %.2f\n", name, float64(a)/float64(b))
}

// LoadAverage is /proc/loadavg's first three fields, printed beside the
// results so a reader can tell a busy run from a quiet one.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
