package criclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RunPod runs a pod sandbox from a config file and returns its ID.
func (c *Client) RunPod(ctx context.Context, cfg *runtimeapi.PodSandboxConfig, runtimeHandler string) (string, error) {
	ctx, cancel := c.long(ctx, 0)
	defer cancel()
	r, err := c.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: runtimeHandler})
	if err != nil {
		return "", fmt.Errorf("run pod sandbox %q: %w", cfg.GetMetadata().GetName(), rpcErr(err))
	}
	return r.GetPodSandboxId(), nil
}

// StopPod stops a pod sandbox.
func (c *Client) StopPod(ctx context.Context, id string) error {
	ctx, cancel := c.long(ctx, 0)
	defer cancel()
	if _, err := c.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("stop pod sandbox %q: %w", id, rpcErr(err))
	}
	return nil
}

// RemovePod removes a pod sandbox; force stops it first (crictl's rmp -f).
// Without force a ready pod is refused, as crictl refuses it.
func (c *Client) RemovePod(ctx context.Context, id string, force bool) error {
	if force {
		if err := c.StopPod(ctx, id); err != nil {
			return err
		}
	} else {
		st, err := c.PodStatus(ctx, id, false)
		if err != nil {
			return err
		}
		if st.GetStatus().GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
			return fmt.Errorf("remove pod sandbox %q: it is ready; stop it first (stopp) or use -f", id)
		}
	}
	ctx, cancel := c.long(ctx, 0)
	defer cancel()
	if _, err := c.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("remove pod sandbox %q: %w", id, rpcErr(err))
	}
	return nil
}

// PodStatus returns a pod's status; verbose adds the runtime's info map.
func (c *Client) PodStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	r, err := c.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: verbose})
	if err != nil {
		return nil, fmt.Errorf("pod sandbox %q: %w", id, rpcErr(err))
	}
	return r, nil
}

// PodFilter selects pods as crictl pods does.
type PodFilter struct {
	ID        string // exact ID or a prefix the runtime resolves
	Name      string // regular expression on metadata.name
	Namespace string // regular expression on metadata.namespace
	State     string // ready or notready (any case); "" is any
	Labels    map[string]string
	Latest    bool // only the newest
	Last      int  // only the n newest
}

// ParseLabels turns key=value strings into a map.
func ParseLabels(kvs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid label %q: want key=value", kv)
		}
		m[k] = v
	}
	return m, nil
}

func compileRegex(what, s string) (*regexp.Regexp, error) {
	if s == "" {
		return nil, nil
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, fmt.Errorf("invalid --%s regular expression %q: %v", what, s, err)
	}
	return re, nil
}

// ListPods lists pods, newest first.
func (c *Client) ListPods(ctx context.Context, f PodFilter) ([]*runtimeapi.PodSandbox, error) {
	nameRe, err := compileRegex("name", f.Name)
	if err != nil {
		return nil, err
	}
	nsRe, err := compileRegex("namespace", f.Namespace)
	if err != nil {
		return nil, err
	}
	filter := &runtimeapi.PodSandboxFilter{Id: f.ID, LabelSelector: f.Labels}
	switch strings.ToLower(f.State) {
	case "":
	case "ready":
		filter.State = &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}
	case "notready":
		filter.State = &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}
	default:
		return nil, fmt.Errorf("invalid --state %q: use ready or notready", f.State)
	}
	cctx, cancel := c.call(ctx)
	defer cancel()
	r, err := c.Runtime.ListPodSandbox(cctx, &runtimeapi.ListPodSandboxRequest{Filter: filter})
	if err != nil {
		return nil, fmt.Errorf("list pod sandboxes: %w", rpcErr(err))
	}
	var out []*runtimeapi.PodSandbox
	for _, p := range r.GetItems() {
		if nameRe != nil && !nameRe.MatchString(p.GetMetadata().GetName()) {
			continue
		}
		if nsRe != nil && !nsRe.MatchString(p.GetMetadata().GetNamespace()) {
			continue
		}
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].GetCreatedAt() > out[j].GetCreatedAt() })
	return limit(out, f.Latest, f.Last), nil
}

func limit[T any](s []T, latest bool, last int) []T {
	n := last
	if latest {
		n = 1
	}
	if n > 0 && len(s) > n {
		return s[:n]
	}
	return s
}

// ListOutput says how a list is written.
type ListOutput struct {
	Format   Format
	Quiet    bool // IDs only
	Verbose  bool // one block of "Key: value" lines per item
	NoTrunc  bool
	Template string
	Now      time.Time // for CREATED; zero means time.Now()
	// ImageName, if set, replaces the IMAGE column of ps (resolve-image-path).
	ImageName func(image string) string
}

func (o ListOutput) now() time.Time {
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}

// WritePods writes pods as crictl pods does.
func WritePods(w io.Writer, pods []*runtimeapi.PodSandbox, o ListOutput) error {
	if o.Format != FormatTable && o.Format != "" {
		return WriteMessage(w, &runtimeapi.ListPodSandboxResponse{Items: pods}, o.Format, o.Template)
	}
	if o.Quiet {
		for _, p := range pods {
			fmt.Fprintln(w, p.GetId())
		}
		return nil
	}
	if o.Verbose {
		for _, p := range pods {
			writePodVerbose(w, p)
		}
		return nil
	}
	tw := newTable(w)
	row(tw, "POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME")
	now := o.now()
	for _, p := range pods {
		id := p.GetId()
		if !o.NoTrunc {
			id = TruncID(id, "")
		}
		handler := p.GetRuntimeHandler()
		if handler == "" {
			handler = "(default)"
		}
		row(tw, id, ago(now, p.GetCreatedAt()), podState(p.GetState()), p.GetMetadata().GetName(),
			p.GetMetadata().GetNamespace(), strconv.FormatUint(uint64(p.GetMetadata().GetAttempt()), 10), handler)
	}
	return tw.Flush()
}

func writePodVerbose(w io.Writer, p *runtimeapi.PodSandbox) {
	fmt.Fprintf(w, "ID: %s\n", p.GetId())
	if md := p.GetMetadata(); md != nil {
		if md.GetName() != "" {
			fmt.Fprintf(w, "Name: %s\n", md.GetName())
		}
		if md.GetUid() != "" {
			fmt.Fprintf(w, "UID: %s\n", md.GetUid())
		}
		if md.GetNamespace() != "" {
			fmt.Fprintf(w, "Namespace: %s\n", md.GetNamespace())
		}
		if md.GetAttempt() != 0 {
			fmt.Fprintf(w, "Attempt: %v\n", md.GetAttempt())
		}
	}
	fmt.Fprintf(w, "Status: %s\n", podState(p.GetState()))
	fmt.Fprintf(w, "Created: %v\n", time.Unix(0, p.GetCreatedAt()))
	writeMap(w, "Labels", p.GetLabels())
	writeMap(w, "Annotations", p.GetAnnotations())
	handler := p.GetRuntimeHandler()
	if handler == "" {
		handler = "(default)"
	}
	fmt.Fprintf(w, "Runtime: %s\n\n", handler)
}

// writeMap writes a sorted "Title:" block of "\tkey -> value" lines.
func writeMap(w io.Writer, title string, m map[string]string) {
	if m == nil {
		return
	}
	fmt.Fprintf(w, "%s:\n", title)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "\t%s -> %s\n", k, m[k])
	}
}

func podState(s runtimeapi.PodSandboxState) string {
	switch s {
	case runtimeapi.PodSandboxState_SANDBOX_READY:
		return "Ready"
	case runtimeapi.PodSandboxState_SANDBOX_NOTREADY:
		return "NotReady"
	}
	return s.String()
}

// ForEach runs fn on every id, reports each failure on errw and returns an
// error naming how many failed. It keeps going after a failure, as crictl
// does for stop/rm of several IDs.
func ForEach(ids []string, errw io.Writer, fn func(id string) error) error {
	var failed int
	var last error
	for _, id := range ids {
		if err := fn(id); err != nil {
			failed++
			last = err
			if len(ids) > 1 {
				fmt.Fprintln(errw, err)
			}
		}
	}
	switch {
	case failed == 0:
		return nil
	case len(ids) == 1:
		return last
	}
	return errors.New(strconv.Itoa(failed) + " of " + strconv.Itoa(len(ids)) + " failed")
}
