package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/kctr/kctr/kubelet"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the agent's pods: phase, containers, restarts and IPs (from its /pods endpoint)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "http-addr", Value: kubelet.DefaultHTTPAddr, Usage: "the agent's HTTP address"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table, json or yaml"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Second, Usage: "how long to wait for the agent"},
		},
		Action: func(c *cli.Context) error {
			format := c.String("output")
			switch format {
			case "table", "json", "yaml":
			default:
				return fmt.Errorf("--output %q: want table, json or yaml", format)
			}
			list, err := fetchPods(c.Context, c.String("http-addr"), c.Duration("timeout"))
			if err != nil {
				return err
			}
			return writePods(c.App.Writer, list, format)
		},
	}
}

func fetchPods(ctx context.Context, addr string, timeout time.Duration) (*v1.PodList, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := "http://" + addr + "/pods"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("is kubelet-lite running? %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	list := &v1.PodList{}
	if err := json.Unmarshal(body, list); err != nil {
		return nil, fmt.Errorf("decode %s: %w", url, err)
	}
	return list, nil
}

func writePods(w io.Writer, list *v1.PodList, format string) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(list, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(list)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tPHASE\tREADY\tRESTARTS\tIP\tCONTAINERS")
	for _, p := range list.Items {
		ready, restarts := 0, int32(0)
		var states []string
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Ready {
				ready++
			}
			restarts += cs.RestartCount
			states = append(states, cs.Name+"="+containerState(cs))
		}
		phase := string(p.Status.Phase)
		if p.Status.Reason != "" {
			phase += " (" + p.Status.Reason + ")"
		}
		if p.DeletionTimestamp != nil {
			phase = "Terminating" // as kubectl shows a pod being deleted
		}
		ip := p.Status.PodIP
		if ip == "" {
			ip = "-"
		}
		containers := strings.Join(states, ",")
		if containers == "" {
			containers = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%s\t%s\n", p.Namespace, p.Name, phase, ready, len(p.Spec.Containers), restarts, ip, containers)
	}
	return tw.Flush()
}

// containerState is one word: Running, a waiting reason, or
// Terminated(<exit code>).
func containerState(cs v1.ContainerStatus) string {
	switch {
	case cs.State.Running != nil:
		return "Running"
	case cs.State.Waiting != nil:
		if cs.State.Waiting.Reason != "" {
			return cs.State.Waiting.Reason
		}
		return "Waiting"
	case cs.State.Terminated != nil:
		return fmt.Sprintf("Terminated(%d)", cs.State.Terminated.ExitCode)
	}
	return "Unknown"
}
