package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/kctr/kctr/images"
)

// progressPrinter draws one line per blob. On a terminal it redraws the
// lines in place; elsewhere (CI logs, pipes) it prints a line only when a
// blob changes state, so logs stay readable.
type progressPrinter struct {
	out        io.Writer
	terminal   bool
	drawnLines int
	lastStatus map[string]images.BlobStatus
	last       []images.BlobProgress
}

func newProgressPrinter(out io.Writer) *progressPrinter {
	terminal := false
	if f, ok := out.(*os.File); ok {
		terminal = term.IsTerminal(int(f.Fd()))
	}
	return &progressPrinter{out: out, terminal: terminal, lastStatus: map[string]images.BlobStatus{}}
}

// Update is an images.ProgressFunc.
func (p *progressPrinter) Update(blobs []images.BlobProgress) {
	p.last = blobs
	if p.terminal {
		p.redraw(blobs)
		return
	}
	for _, b := range blobs {
		key := b.Digest.String()
		if p.lastStatus[key] == b.Status {
			continue
		}
		p.lastStatus[key] = b.Status
		if b.Status == images.BlobDone || b.Status == images.BlobExists || b.Status == images.BlobDownloading {
			fmt.Fprintln(p.out, progressLine(b))
		}
	}
}

// Done leaves the final state on screen.
func (p *progressPrinter) Done() {
	if p.terminal && p.last != nil {
		p.redraw(p.last)
	}
}

func (p *progressPrinter) redraw(blobs []images.BlobProgress) {
	if p.drawnLines > 0 {
		fmt.Fprintf(p.out, "\x1b[%dA", p.drawnLines)
	}
	for _, b := range blobs {
		fmt.Fprintf(p.out, "\x1b[2K%s\n", progressLine(b))
	}
	p.drawnLines = len(blobs)
}

func progressLine(b images.BlobProgress) string {
	kind := blobKind(b.MediaType)
	digest := b.Digest.Encoded()
	if len(digest) > 12 {
		digest = digest[:12]
	}
	line := fmt.Sprintf("%-8s %s: %-11s", kind, digest, b.Status)
	switch b.Status {
	case images.BlobDownloading:
		line += " " + bar(b.Offset, b.Total) + " " + humanSize(b.Offset) + "/" + humanSize(b.Total)
	case images.BlobDone, images.BlobExists:
		line += " " + humanSize(b.Total)
	}
	return line
}

func blobKind(mediaType string) string {
	switch {
	case strings.Contains(mediaType, "index"), strings.Contains(mediaType, "manifest.list"):
		return "index"
	case strings.Contains(mediaType, "manifest"):
		return "manifest"
	case strings.Contains(mediaType, "config"):
		return "config"
	}
	return "layer"
}

func bar(done, total int64) string {
	const width = 30
	filled := 0
	if total > 0 {
		filled = int(done * width / total)
	}
	filled = min(max(filled, 0), width)
	return "[" + strings.Repeat("=", filled) + strings.Repeat(" ", width-filled) + "]"
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	value, suffix := float64(n), []string{"KiB", "MiB", "GiB", "TiB"}
	i := -1
	for value >= unit && i < len(suffix)-1 {
		value /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", value, suffix[i])
}
