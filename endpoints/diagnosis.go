package endpoints

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Candidate is what happened to one endpoint that was tried.
type Candidate struct {
	Endpoint string // canonical form
	Source   Source
	// SocketExists says the socket file is there (always true for tcp).
	SocketExists bool
	// Answered says the endpoint answered RuntimeService.Version (for an
	// image endpoint record: ImageService.ImageFsInfo).
	Answered          bool
	RuntimeName       string
	RuntimeVersion    string
	RuntimeAPIVersion string
	// Err says why the candidate was skipped; "" if it answered.
	Err    string
	Chosen bool
	// Duration is the time spent on this candidate (stat, dial, call).
	Duration time.Duration
}

// candidateJSON fixes the JSON keys of a Candidate.
type candidateJSON struct {
	Endpoint          string  `json:"endpoint"`
	Source            Source  `json:"source"`
	SocketExists      bool    `json:"socket_exists"`
	Answered          bool    `json:"answered"`
	RuntimeName       string  `json:"runtime_name"`
	RuntimeVersion    string  `json:"runtime_version"`
	RuntimeAPIVersion string  `json:"runtime_api_version"`
	Error             string  `json:"error"`
	Chosen            bool    `json:"chosen"`
	DurationMS        float64 `json:"duration_ms"`
}

// MarshalJSON writes stable lowercase keys; duration is in milliseconds.
func (c Candidate) MarshalJSON() ([]byte, error) {
	return json.Marshal(candidateJSON{
		Endpoint:          c.Endpoint,
		Source:            c.Source,
		SocketExists:      c.SocketExists,
		Answered:          c.Answered,
		RuntimeName:       c.RuntimeName,
		RuntimeVersion:    c.RuntimeVersion,
		RuntimeAPIVersion: c.RuntimeAPIVersion,
		Error:             c.Err,
		Chosen:            c.Chosen,
		DurationMS:        ms(c.Duration),
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Candidate) UnmarshalJSON(b []byte) error {
	var j candidateJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*c = Candidate{
		Endpoint:          j.Endpoint,
		Source:            j.Source,
		SocketExists:      j.SocketExists,
		Answered:          j.Answered,
		RuntimeName:       j.RuntimeName,
		RuntimeVersion:    j.RuntimeVersion,
		RuntimeAPIVersion: j.RuntimeAPIVersion,
		Err:               j.Error,
		Chosen:            j.Chosen,
		Duration:          time.Duration(j.DurationMS * float64(time.Millisecond)),
	}
	return nil
}

func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// Diagnosis is the full account of a resolution, from Diagnose.
type Diagnosis struct {
	ConfigPath   string
	ConfigSource Source // flag, env or default
	ConfigFound  bool
	Timeout      time.Duration // per probe
	// Candidates are all runtime candidates, in the order Resolve tries them.
	Candidates []Candidate
	// Chosen is the endpoint Resolve would pick; "" if none answered.
	Chosen string
	// Reason says why Chosen was chosen, or that nothing answered.
	Reason string
	// ImageEndpoint and ImageSource say where image calls go
	// (ImageSource "runtime": same as Chosen).
	ImageEndpoint string
	ImageSource   Source
	// Image is the probe of a separate image endpoint; nil if the image
	// endpoint is the runtime endpoint.
	Image    *Candidate
	Warnings []string
	// Err is a setup error (bad endpoint syntax, bad config file) that
	// stopped the diagnosis before any probe.
	Err string
}

type diagnosisJSON struct {
	ConfigPath    string      `json:"config_path"`
	ConfigSource  Source      `json:"config_source"`
	ConfigFound   bool        `json:"config_found"`
	TimeoutMS     float64     `json:"timeout_ms"`
	Candidates    []Candidate `json:"candidates"`
	Chosen        string      `json:"chosen"`
	Reason        string      `json:"reason"`
	ImageEndpoint string      `json:"image_endpoint"`
	ImageSource   Source      `json:"image_source"`
	Image         *Candidate  `json:"image"`
	Warnings      []string    `json:"warnings"`
	Error         string      `json:"error"`
}

// MarshalJSON writes stable lowercase keys; durations are in milliseconds.
func (d *Diagnosis) MarshalJSON() ([]byte, error) {
	cands := d.Candidates
	if cands == nil {
		cands = []Candidate{}
	}
	warns := d.Warnings
	if warns == nil {
		warns = []string{}
	}
	return json.Marshal(diagnosisJSON{
		ConfigPath:    d.ConfigPath,
		ConfigSource:  d.ConfigSource,
		ConfigFound:   d.ConfigFound,
		TimeoutMS:     ms(d.Timeout),
		Candidates:    cands,
		Chosen:        d.Chosen,
		Reason:        d.Reason,
		ImageEndpoint: d.ImageEndpoint,
		ImageSource:   d.ImageSource,
		Image:         d.Image,
		Warnings:      warns,
		Error:         d.Err,
	})
}

// WriteJSON writes the diagnosis as indented JSON.
func (d *Diagnosis) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteTable writes one row per candidate, then lines naming the choice,
// the image endpoint and the config file. Warnings are not written (the
// CLI prints them to stderr).
func (d *Diagnosis) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tSOURCE\tSOCKET\tANSWERED\tRUNTIME\tVERSION\tAPI\tTIME\tERROR")
	for _, c := range d.Candidates {
		writeRow(tw, c)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var b strings.Builder
	if d.Err != "" {
		fmt.Fprintf(&b, "error: %s\n", d.Err)
	}
	if d.Chosen != "" {
		fmt.Fprintf(&b, "chosen: %s (%s)\n", d.Chosen, d.Reason)
	} else if d.Err == "" {
		fmt.Fprintf(&b, "chosen: none (%s)\n", d.Reason)
	}
	switch {
	case d.Image != nil:
		status := "answered ImageFsInfo"
		if !d.Image.Answered {
			status = d.Image.Err
		}
		fmt.Fprintf(&b, "image: %s (%s): %s\n", d.Image.Endpoint, d.Image.Source, status)
	case d.ImageEndpoint != "":
		fmt.Fprintf(&b, "image: %s (%s)\n", d.ImageEndpoint, d.ImageSource)
	}
	if d.ConfigPath != "" {
		state := "not present"
		if d.ConfigFound {
			state = "loaded"
		}
		fmt.Fprintf(&b, "config: %s (%s, %s)\n", d.ConfigPath, d.ConfigSource, state)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeRow(w io.Writer, c Candidate) {
	socket := "missing"
	switch {
	case strings.HasPrefix(c.Endpoint, "tcp://"):
		socket = "n/a"
	case c.SocketExists:
		socket = "present"
	}
	answered := "no"
	if c.Answered {
		answered = "yes"
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
		c.Endpoint, c.Source, socket, answered,
		dash(c.RuntimeName), dash(c.RuntimeVersion), dash(c.RuntimeAPIVersion),
		fmt.Sprintf("%.1fms", ms(c.Duration)), dash(c.Err))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// NoEndpointError is returned by Resolve when no candidate answered. Its
// message is a short diagnosis: one line per candidate tried.
type NoEndpointError struct {
	Candidates []Candidate
	// SetBy names who set the endpoint (e.g. "--runtime-endpoint"); ""
	// when the default list was tried.
	SetBy      string
	ConfigPath string
	Warnings   []string
	cause      error // the caller's context error, if it ended the search
}

func (e *NoEndpointError) Error() string {
	var b strings.Builder
	if e.SetBy != "" {
		fmt.Fprintf(&b, "no CRI runtime answered on the runtime endpoint set by %s:\n", e.SetBy)
	} else {
		fmt.Fprintf(&b, "no CRI runtime answered on any default endpoint:\n")
	}
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, c := range e.Candidates {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Endpoint, c.Source, dash(c.Err))
	}
	tw.Flush()
	if e.cause != nil {
		fmt.Fprintf(&b, "stopped early: %v\n", e.cause)
	}
	if e.SetBy == "" {
		fmt.Fprintf(&b, "is a runtime running? set its endpoint with --runtime-endpoint, $%s or runtime-endpoint in %s", EnvRuntimeEndpoint, e.ConfigPath)
	} else {
		b.WriteString("is the runtime running, and is this its socket?")
	}
	return b.String()
}

// Unwrap returns the caller's context error if it ended the search early.
func (e *NoEndpointError) Unwrap() error { return e.cause }
