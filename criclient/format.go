package criclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
	"unicode"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// Format is an output format.
type Format string

// Output formats, as crictl spells them.
const (
	FormatTable    Format = "table"
	FormatJSON     Format = "json"
	FormatYAML     Format = "yaml"
	FormatTemplate Format = "go-template"
)

// ParseFormat checks an -o value against the formats a command accepts.
// "" means the first of allowed.
func ParseFormat(s string, allowed ...Format) (Format, error) {
	if s == "" {
		return allowed[0], nil
	}
	names := make([]string, len(allowed))
	for i, f := range allowed {
		if string(f) == s {
			return f, nil
		}
		names[i] = string(f)
	}
	return "", fmt.Errorf("unsupported output format %q (use one of %s)", s, strings.Join(names, ", "))
}

// MarshalJSON renders a CRI message as crictl does: protobuf JSON with
// default values emitted, two-space indent.
func MarshalJSON(m proto.Message) ([]byte, error) {
	b, err := protojson.MarshalOptions{EmitDefaultValues: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return nil, err
	}
	// protojson randomises whitespace; normalise it for stable output.
	var buf bytes.Buffer
	if err := json.Indent(&buf, compact(b), "", "  "); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func compact(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

// WriteMessage writes m as JSON, YAML or through a go-template.
func WriteMessage(w io.Writer, m proto.Message, f Format, tmpl string) error {
	j, err := MarshalJSON(m)
	if err != nil {
		return err
	}
	return writeJSONAs(w, j, f, tmpl)
}

// writeJSONAs writes JSON text in format f (table is not valid here).
func writeJSONAs(w io.Writer, j []byte, f Format, tmpl string) error {
	switch f {
	case FormatJSON:
		var buf bytes.Buffer
		if err := json.Indent(&buf, compact(j), "", "  "); err != nil {
			return err
		}
		buf.WriteByte('\n')
		_, err := w.Write(buf.Bytes())
		return err
	case FormatYAML:
		y, err := yaml.JSONToYAML(j)
		if err != nil {
			return err
		}
		_, err = w.Write(y)
		return err
	case FormatTemplate:
		return ExecuteTemplate(w, tmpl, j)
	}
	return fmt.Errorf("unsupported output format %q", f)
}

// ExecuteTemplate runs a go-template over JSON data decoded into generic
// maps, so field names are the JSON names ({{.status.id}}).
func ExecuteTemplate(w io.Writer, text string, j []byte) error {
	if text == "" {
		return fmt.Errorf("--template is required with -o go-template")
	}
	t, err := template.New("output").Funcs(template.FuncMap{
		"json":  func(v any) (string, error) { b, err := json.Marshal(v); return string(b) + "\n", err },
		"join":  strings.Join,
		"title": titleCase,
		"lower": strings.ToLower,
		"upper": strings.ToUpper,
	}).Parse(text)
	if err != nil {
		return fmt.Errorf("parse template: %w", err)
	}
	data, err := decodeJSON(j)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return fmt.Errorf("execute template: %w", err)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// titleCase upper-cases the first letter of every word.
func titleCase(s string) string {
	prev := ' '
	return strings.Map(func(r rune) rune {
		defer func() { prev = r }()
		if prev == ' ' || prev == '\t' || prev == '\n' || prev == '-' || prev == '_' {
			return unicode.ToUpper(r)
		}
		return r
	}, s)
}

// newTable matches crictl's table layout (min width 20, padding 3).
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 20, 1, 3, ' ', 0)
}

func row(w io.Writer, cols ...string) {
	fmt.Fprintln(w, strings.Join(cols, "\t"))
}

// truncatedIDLen is how many characters of an ID tables show.
const truncatedIDLen = 13

// TruncID drops prefix and cuts id to the table length.
func TruncID(id, prefix string) string {
	id = strings.TrimPrefix(id, prefix)
	if len(id) > truncatedIDLen {
		id = id[:truncatedIDLen]
	}
	return id
}

// HumanSize renders a byte count with three significant digits in
// decimal units (4.24MB), as crictl's images table does.
func HumanSize(n float64) string { return humanSize(n, 3) }

// humanSize4 is the four-digit form of crictl's stats tables (1.234MB).
func humanSize4(n float64) string { return humanSize(n, 4) }

func humanSize(n float64, digits int) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"}
	i := 0
	for n >= 1000 && i < len(units)-1 {
		n /= 1000
		i++
	}
	return fmt.Sprintf("%.*g%s", digits, n, units[i])
}

// HumanDuration renders an age the way crictl's CREATED column does.
func HumanDuration(d time.Duration) string {
	s := int(d.Seconds())
	switch {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	m := int(d.Minutes())
	switch {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	h := int(d.Hours() + 0.5)
	switch {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}

// ago renders a CRI nanosecond timestamp relative to now.
func ago(now time.Time, nanos int64) string {
	return HumanDuration(now.Sub(time.Unix(0, nanos))) + " ago"
}
