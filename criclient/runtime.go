package criclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Version asks the runtime for its name and versions.
func (c *Client) Version(ctx context.Context) (*runtimeapi.VersionResponse, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	r, err := c.Runtime.Version(ctx, &runtimeapi.VersionRequest{Version: "v1"})
	if err != nil {
		return nil, fmt.Errorf("runtime version: %w", rpcErr(err))
	}
	return r, nil
}

// WriteVersion writes the version as crictl does (its double space kept,
// since scripts cut on it).
func WriteVersion(w io.Writer, v *runtimeapi.VersionResponse) {
	fmt.Fprintln(w, "Version: ", v.GetVersion())
	fmt.Fprintln(w, "RuntimeName: ", v.GetRuntimeName())
	fmt.Fprintln(w, "RuntimeVersion: ", v.GetRuntimeVersion())
	fmt.Fprintln(w, "RuntimeApiVersion: ", v.GetRuntimeApiVersion())
}

// Info returns the runtime status with its verbose info, the runtime
// handlers and features, ready for WriteStatus (crictl info).
func (c *Client) Info(ctx context.Context) (StatusData, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	r, err := c.Runtime.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		return StatusData{}, fmt.Errorf("runtime status: %w", rpcErr(err))
	}
	sd := StatusData{Status: r.GetStatus(), Info: r.GetInfo(), Extra: map[string]json.RawMessage{}}
	// As crictl: the Go JSON form of these (proto field names, no
	// defaults), not protobuf JSON.
	if hs := r.GetRuntimeHandlers(); len(hs) > 0 {
		b, err := json.Marshal(hs)
		if err != nil {
			return StatusData{}, err
		}
		sd.Extra["runtimeHandlers"] = b
	}
	if f := r.GetFeatures(); f != nil {
		b, err := json.Marshal(f)
		if err != nil {
			return StatusData{}, err
		}
		sd.Extra["features"] = b
	}
	return sd, nil
}

// RuntimeConfig returns the runtime's configuration (cgroup driver).
func (c *Client) RuntimeConfig(ctx context.Context) (*runtimeapi.RuntimeConfigResponse, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	r, err := c.Runtime.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{})
	if err != nil {
		return nil, fmt.Errorf("runtime config: %w", rpcErr(err))
	}
	return r, nil
}

// WriteRuntimeConfig writes the runtime configuration as crictl does.
func WriteRuntimeConfig(w io.Writer, r *runtimeapi.RuntimeConfigResponse) {
	fmt.Fprintf(w, "cgroup driver:   %s\n", r.GetLinux().GetCgroupDriver())
}
