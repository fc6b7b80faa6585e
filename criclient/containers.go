package criclient

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CreateOptions are the inputs of create (and the container half of run).
type CreateOptions struct {
	PodID     string
	Container *runtimeapi.ContainerConfig
	Pod       *runtimeapi.PodSandboxConfig
	// Pull pulls the container image first (crictl's --with-pull or
	// pull-image-on-create in the config file).
	Pull bool
	Auth *runtimeapi.AuthConfig
}

// CreateContainer creates a container in a pod and returns its ID.
func (c *Client) CreateContainer(ctx context.Context, o CreateOptions) (string, error) {
	if o.Pull {
		if _, err := c.PullImage(ctx, PullOptions{Image: o.Container.GetImage().GetImage(), Auth: o.Auth, Pod: o.Pod}); err != nil {
			return "", err
		}
	}
	cctx, cancel := c.long(ctx, 0)
	defer cancel()
	r, err := c.Runtime.CreateContainer(cctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId:  o.PodID,
		Config:        o.Container,
		SandboxConfig: o.Pod,
	})
	if err != nil {
		return "", fmt.Errorf("create container %q in pod %q: %w", o.Container.GetMetadata().GetName(), o.PodID, rpcErr(err))
	}
	return r.GetContainerId(), nil
}

// StartContainer starts a created container.
func (c *Client) StartContainer(ctx context.Context, id string) error {
	ctx, cancel := c.long(ctx, 0)
	defer cancel()
	if _, err := c.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("start container %q: %w", id, rpcErr(err))
	}
	return nil
}

// StopContainer stops a container, giving it timeout to exit before it
// is killed.
func (c *Client) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	ctx, cancel := c.long(ctx, timeout)
	defer cancel()
	if _, err := c.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: int64(timeout.Seconds())}); err != nil {
		return fmt.Errorf("stop container %q: %w", id, rpcErr(err))
	}
	return nil
}

// RemoveContainer removes a container; force stops a running one first,
// otherwise a running container is refused as crictl refuses it.
func (c *Client) RemoveContainer(ctx context.Context, id string, force bool) error {
	st, err := c.ContainerStatus(ctx, id, false)
	if err != nil {
		return err
	}
	if st.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
		if !force {
			return fmt.Errorf("remove container %q: it is running; stop it first or use -f", id)
		}
		if err := c.StopContainer(ctx, id, 0); err != nil {
			return err
		}
	}
	cctx, cancel := c.long(ctx, 0)
	defer cancel()
	if _, err := c.Runtime.RemoveContainer(cctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("remove container %q: %w", id, rpcErr(err))
	}
	return nil
}

// ContainerStatus returns a container's status; verbose adds info.
func (c *Client) ContainerStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.ContainerStatusResponse, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	r, err := c.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: verbose})
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", id, rpcErr(err))
	}
	return r, nil
}

// ContainerFilter selects containers as crictl ps does.
type ContainerFilter struct {
	ID     string
	PodID  string
	Name   string // regular expression on metadata.name
	Image  string // image reference or ID; matches containers of the same image
	State  string // created, running, exited, unknown (any case)
	All    bool   // without State or All, only running containers
	Labels map[string]string
	Latest bool
	Last   int
	// Namespace is a regular expression on the pod namespace label.
	Namespace string
}

// ListContainers lists containers, newest first.
func (c *Client) ListContainers(ctx context.Context, f ContainerFilter) ([]*runtimeapi.Container, error) {
	nameRe, err := compileRegex("name", f.Name)
	if err != nil {
		return nil, err
	}
	nsRe, err := compileRegex("namespace", f.Namespace)
	if err != nil {
		return nil, err
	}
	filter := &runtimeapi.ContainerFilter{Id: f.ID, PodSandboxId: f.PodID, LabelSelector: f.Labels}
	state := strings.ToLower(f.State)
	if state == "" && !f.All && !f.Latest && f.Last == 0 {
		state = "running"
	}
	switch state {
	case "":
	case "created":
		filter.State = &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_CREATED}
	case "running":
		filter.State = &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}
	case "exited":
		filter.State = &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_EXITED}
	case "unknown":
		filter.State = &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_UNKNOWN}
	default:
		return nil, fmt.Errorf("invalid --state %q: use created, running, exited or unknown", f.State)
	}
	cctx, cancel := c.call(ctx)
	defer cancel()
	r, err := c.Runtime.ListContainers(cctx, &runtimeapi.ListContainersRequest{Filter: filter})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", rpcErr(err))
	}
	var imageID string
	if f.Image != "" {
		imageID, err = c.imageID(ctx, f.Image)
		if err != nil {
			return nil, err
		}
	}
	var out []*runtimeapi.Container
	for _, ctr := range r.GetContainers() {
		if !matches(nameRe, ctr.GetMetadata().GetName()) || !matches(nsRe, ctr.GetLabels()[labelPodNamespace]) {
			continue
		}
		if f.Image != "" && !c.sameImage(ctx, imageID, f.Image, ctr) {
			continue
		}
		out = append(out, ctr)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].GetCreatedAt() > out[j].GetCreatedAt() })
	return limit(out, f.Latest, f.Last), nil
}

func matches(re *regexp.Regexp, s string) bool { return re == nil || re.MatchString(s) }

// imageID resolves an image reference to its ID ("" if not present).
func (c *Client) imageID(ctx context.Context, ref string) (string, error) {
	st, err := c.ImageStatus(ctx, ref, false)
	if err != nil {
		return "", err
	}
	return st.GetImage().GetId(), nil
}

func (c *Client) sameImage(ctx context.Context, imageID, ref string, ctr *runtimeapi.Container) bool {
	img := ctr.GetImage().GetImage()
	if img == ref || ctr.GetImageRef() == ref || ctr.GetImageId() == ref {
		return true
	}
	if imageID == "" {
		return false
	}
	if ctr.GetImageId() == imageID || ctr.GetImageRef() == imageID || img == imageID {
		return true
	}
	id, err := c.imageID(ctx, img)
	return err == nil && id == imageID
}

// Labels the kubelet (and crictl's tables) use for pod name and namespace.
const (
	labelPodName      = "io.kubernetes.pod.name"
	labelPodNamespace = "io.kubernetes.pod.namespace"
)

// WriteContainers writes containers as crictl ps does.
func WriteContainers(w io.Writer, ctrs []*runtimeapi.Container, o ListOutput) error {
	if o.Format != FormatTable && o.Format != "" {
		return WriteMessage(w, &runtimeapi.ListContainersResponse{Containers: ctrs}, o.Format, o.Template)
	}
	if o.Quiet {
		for _, c := range ctrs {
			fmt.Fprintln(w, c.GetId())
		}
		return nil
	}
	now := o.now()
	if o.Verbose {
		for _, c := range ctrs {
			writeContainerVerbose(w, c, now)
		}
		return nil
	}
	tw := newTable(w)
	row(tw, "CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD", "NAMESPACE")
	for _, c := range ctrs {
		id, podID, image := c.GetId(), c.GetPodSandboxId(), c.GetImage().GetImage()
		if o.ImageName != nil {
			image = o.ImageName(image)
		} else if !o.NoTrunc {
			if alg, hex, ok := strings.Cut(image, ":"); ok && alg == "sha256" && len(hex) == 64 {
				image = TruncID(hex, "")
			}
		}
		if !o.NoTrunc {
			id, podID = TruncID(id, ""), TruncID(podID, "")
		}
		row(tw, id, image, ago(now, c.GetCreatedAt()), containerState(c.GetState()), c.GetMetadata().GetName(),
			strconv.FormatUint(uint64(c.GetMetadata().GetAttempt()), 10), podID,
			labelOr(c.GetLabels(), labelPodName), labelOr(c.GetLabels(), labelPodNamespace))
	}
	return tw.Flush()
}

func writeContainerVerbose(w io.Writer, c *runtimeapi.Container, now time.Time) {
	fmt.Fprintf(w, "ID: %s\n", c.GetId())
	fmt.Fprintf(w, "PodID: %s\n", c.GetPodSandboxId())
	fmt.Fprintf(w, "Namespace: %s\n", labelOr(c.GetLabels(), labelPodNamespace))
	if md := c.GetMetadata(); md != nil {
		if md.GetName() != "" {
			fmt.Fprintf(w, "Name: %s\n", md.GetName())
		}
		fmt.Fprintf(w, "Attempt: %v\n", md.GetAttempt())
	}
	fmt.Fprintf(w, "State: %s\n", containerState(c.GetState()))
	if c.GetImage() != nil {
		fmt.Fprintf(w, "Image: %s\n", c.GetImage().GetImage())
	}
	fmt.Fprintf(w, "Created: %s\n", ago(now, c.GetCreatedAt()))
	writeMap(w, "Labels", c.GetLabels())
	writeMap(w, "Annotations", c.GetAnnotations())
	fmt.Fprintln(w)
}

// RepoImage returns the first tag of an image (ps --resolve-image-path),
// or ref itself if the image has none or is unknown.
func (c *Client) RepoImage(ctx context.Context, ref string) string {
	st, err := c.ImageStatus(ctx, ref, false)
	if err != nil || len(st.GetImage().GetRepoTags()) == 0 {
		return ref
	}
	return st.GetImage().GetRepoTags()[0]
}

func containerState(s runtimeapi.ContainerState) string {
	switch s {
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		return "Created"
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return "Running"
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return "Exited"
	case runtimeapi.ContainerState_CONTAINER_UNKNOWN:
		return "Unknown"
	}
	return s.String()
}

// labelOr returns a label's value, "unknown" when it is missing (as crictl).
func labelOr(labels map[string]string, key string) string {
	if v, ok := labels[key]; ok {
		return v
	}
	return "unknown"
}
