package criclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StatusData is one inspected object: its status message plus the
// runtime's verbose info map, rendered as crictl renders inspect output:
// {"info": {...}, "status": {...}} with every object's keys sorted
// (several objects become a list). Unlike crictl, numbers keep their
// precision (no float64 round trip).
type StatusData struct {
	Status proto.Message
	Info   map[string]string
	// Extra holds further top-level keys (e.g. runtimeHandlers,
	// features for info), already in JSON.
	Extra map[string]json.RawMessage
	// fix adjusts the decoded status (readable timestamps).
	fix func(map[string]any)
}

// ContainerStatusData renders a container status as crictl inspect does:
// every top-level field present (null when unset) and the createdAt,
// startedAt and finishedAt timestamps as RFC 3339 times.
func ContainerStatusData(r *runtimeapi.ContainerStatusResponse) StatusData {
	cs := r.GetStatus()
	return StatusData{Status: cs, Info: r.GetInfo(), fix: func(m map[string]any) {
		fillNulls(m, cs)
		m["createdAt"] = rfc3339(cs.GetCreatedAt())
		var started, finished int64 = math.MinInt64, math.MinInt64
		if cs.GetState() != runtimeapi.ContainerState_CONTAINER_CREATED {
			started = cs.GetStartedAt()
		}
		if cs.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED ||
			(cs.GetState() == runtimeapi.ContainerState_CONTAINER_UNKNOWN && cs.GetFinishedAt() > 0) {
			finished = cs.GetFinishedAt()
		}
		m["startedAt"], m["finishedAt"] = rfc3339(started), rfc3339(finished)
	}}
}

// PodStatusData renders a pod status as crictl inspectp does.
func PodStatusData(r *runtimeapi.PodSandboxStatusResponse) StatusData {
	ps := r.GetStatus()
	return StatusData{Status: ps, Info: r.GetInfo(), fix: func(m map[string]any) {
		fillNulls(m, ps)
		m["createdAt"] = rfc3339(ps.GetCreatedAt())
	}}
}

// rfc3339 formats CRI nanoseconds in local time; math.MinInt64 stands for
// "never" and gives Go's zero time, as crictl prints it.
func rfc3339(nanos int64) string {
	if nanos == math.MinInt64 {
		return time.Time{}.Format(time.RFC3339Nano)
	}
	return time.Unix(0, nanos).Format(time.RFC3339Nano)
}

// fillNulls adds the message's unset top-level fields as null.
func fillNulls(m map[string]any, msg proto.Message) {
	fields := msg.ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		if name := fields.Get(i).JSONName(); m[name] == nil {
			m[name] = nil
		}
	}
}

func (s StatusData) object() (map[string]any, error) {
	obj := map[string]any{}
	if s.Status != nil {
		j, err := MarshalJSON(s.Status)
		if err != nil {
			return nil, err
		}
		if obj["status"], err = decodeJSON(j); err != nil {
			return nil, err
		}
		if m, ok := obj["status"].(map[string]any); ok && s.fix != nil {
			s.fix(m)
		}
	}
	for k, v := range s.Extra {
		d, err := decodeJSON(v)
		if err != nil {
			return nil, err
		}
		obj[k] = d
	}
	keys := make([]string, 0, len(s.Info))
	for k := range s.Info {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := s.Info[k]
		if d, err := decodeJSON([]byte(v)); err == nil && strings.HasPrefix(strings.TrimSpace(v), "{") {
			obj[k] = d
		} else {
			obj[k] = strings.Trim(v, `"`)
		}
	}
	return obj, nil
}

// WriteStatus writes inspected objects as JSON, YAML or a go-template.
// One object is written bare, several as a list.
func WriteStatus(w io.Writer, items []StatusData, f Format, tmpl string) error {
	if len(items) == 0 {
		return nil
	}
	objs := make([]any, 0, len(items))
	for _, it := range items {
		o, err := it.object()
		if err != nil {
			return err
		}
		objs = append(objs, o)
	}
	var v any = objs
	if len(objs) == 1 {
		v = objs[0]
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("marshal status: %w", err)
	}
	return writeJSONAs(w, bytes.TrimSpace(buf.Bytes()), f, tmpl)
}

// decodeJSON decodes into generic values (maps marshal with sorted keys)
// keeping numbers exact.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
