package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// kubelet-lite's read-only HTTP address in the demo: not the default, so a
// kubelet-lite already running on the host is left alone.
const demoKubeletAddr = "127.0.0.1:10355"

// runStaticPods hands kcrid to kubelet-lite: a manifest folder with a web
// server (env from fieldRefs, an emptyDir, a readiness probe) and
// a pod that crashes, then a manifest removed. Every pod is gone before it
// returns; kubelet-lite itself is stopped with SIGTERM.
func (d *podDemo) runStaticPods(ctx context.Context, endpoint string, kcrictl func(...string) (string, error)) (retErr error) {
	if _, err := os.Stat(filepath.Join(d.binDir, "kubelet-lite")); err != nil {
		return fmt.Errorf("kubelet-lite is not built (run `make build`): %w", err)
	}
	step("kubelet-lite keeps static pods from a manifest folder running, through kcrid")
	manifests := filepath.Join(d.work, "manifests")
	if err := os.MkdirAll(manifests, 0o755); err != nil {
		return err
	}
	image := d.registry.Host() + "/demo/busybox:latest"
	web := filepath.Join(manifests, "web.yaml")
	if err := os.WriteFile(web, []byte(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: httpd
    image: %[1]s
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'echo "hello from $(POD_NAME) at $(POD_IP)" > /www/index.html; exec httpd -f -p 8080 -h /www']
    env:
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    ports: [{containerPort: 8080}]
    readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
    volumeMounts: [{name: www, mountPath: /www}]
  volumes: [{name: www, emptyDir: {}}]
`, image)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(manifests, "crasher.yaml"), []byte(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: %s, imagePullPolicy: IfNotPresent, command: [sh, -c, 'echo crashing; exit 1']}
`, image)), 0o644); err != nil {
		return err
	}
	fmt.Printf("manifests in %s: web.yaml, crasher.yaml\n", manifests)

	args := []string{"--manifests", manifests, "--runtime-endpoint", endpoint,
		"--root-dir", filepath.Join(d.work, "kubelet-lite"), "--pod-logs-dir", filepath.Join(d.work, "pods"),
		"--node-name", "demo", "--http-addr", demoKubeletAddr,
		"--file-check-frequency", "1s", "--backoff-initial", "2s"}
	fmt.Printf("\n$ kubelet-lite %s &\n", shellQuote(args))
	agent := exec.Command(filepath.Join(d.binDir, "kubelet-lite"), args...)
	logFile, err := os.Create(filepath.Join(d.work, "kubelet-lite.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	agent.Stdout, agent.Stderr = logFile, logFile
	if err := agent.Start(); err != nil {
		return fmt.Errorf("start kubelet-lite: %w", err)
	}
	defer func() {
		// Pods outlive the agent (as with the kubelet): empty the folder,
		// let the agent remove them, then stop it.
		if err := removeAllManifests(manifests); err != nil && retErr == nil {
			retErr = err
		}
		if err := d.waitForSandboxes(ctx, endpoint, func(names []string) bool { return !slices.Contains(names, "web") && !slices.Contains(names, "crasher") }); err != nil && retErr == nil {
			retErr = fmt.Errorf("kubelet-lite did not remove its pods: %w", err)
		}
		_ = agent.Process.Signal(syscall.SIGTERM)
		_ = agent.Wait()
	}()

	var podIP string
	if err := waitForPods(ctx, func(pods []corev1.Pod) bool {
		for _, p := range pods {
			if p.Name == "web" && p.Status.Phase == corev1.PodRunning && podReady(p) {
				podIP = p.Status.PodIP
				return true
			}
		}
		return false
	}); err != nil {
		return fmt.Errorf("web never became ready (see %s): %w", logFile.Name(), err)
	}
	if err := d.kubeletLiteStatus(ctx); err != nil {
		return err
	}
	page, err := httpGet(ctx, "http://"+podIP+":8080/")
	if err != nil {
		return err
	}
	fmt.Printf("\n$ curl http://%s:8080/\n%s", podIP, page)
	logs, _ := filepath.Glob(filepath.Join(d.work, "pods", "default_web_*", "httpd", "0.log"))
	if len(logs) == 1 {
		fmt.Printf("web's container log is at %s (the kubelet's layout)\n", logs[0])
	}

	step("kubelet-lite restarts the crashing pod with back-off")
	if err := waitForPods(ctx, func(pods []corev1.Pod) bool {
		for _, p := range pods {
			if p.Name == "crasher" && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 2 {
				return true
			}
		}
		return false
	}); err != nil {
		return fmt.Errorf("crasher was not restarted: %w", err)
	}
	if err := d.kubeletLiteStatus(ctx); err != nil {
		return err
	}

	step("A manifest removed: kubelet-lite stops its pod within the grace period and removes it")
	fmt.Printf("\n$ rm %s\n", web)
	if err := os.Remove(web); err != nil {
		return err
	}
	if err := d.waitForSandboxes(ctx, endpoint, func(names []string) bool { return !slices.Contains(names, "web") }); err != nil {
		return fmt.Errorf("web was not removed: %w", err)
	}
	_, err = kcrictl("pods")
	return err
}

// kubeletLiteStatus prints `kubelet-lite status` as a user would run it.
func (d *podDemo) kubeletLiteStatus(ctx context.Context) error {
	args := []string{"status", "--http-addr", demoKubeletAddr}
	fmt.Printf("\n$ kubelet-lite %s\n", shellQuote(args))
	cmd := exec.CommandContext(ctx, filepath.Join(d.binDir, "kubelet-lite"), args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// waitForPods polls kubelet-lite's /pods until done says so (60 s at most).
func waitForPods(ctx context.Context, done func([]corev1.Pod) bool) error {
	deadline := time.Now().Add(60 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		body, err := httpGet(ctx, "http://"+demoKubeletAddr+"/pods")
		if err == nil {
			var list corev1.PodList
			if err = json.Unmarshal([]byte(body), &list); err == nil && done(list.Items) {
				return nil
			}
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	if lastErr != nil {
		return lastErr
	}
	return errors.New("timed out after 60 s")
}

// waitForSandboxes polls the runtime (kcrictl pods, quietly) until done
// says so about the pod names it lists (60 s at most): what kubelet-lite
// shows is what it wants, the runtime is what is there.
func (d *podDemo) waitForSandboxes(ctx context.Context, endpoint string, done func(names []string) bool) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		out, err := exec.CommandContext(ctx, filepath.Join(d.binDir, "kcrictl"), "--runtime-endpoint", endpoint,
			"--config", filepath.Join(d.work, "crictl.yaml"), "pods", "-o", "json").Output()
		if err != nil {
			return fmt.Errorf("kcrictl pods: %w", err)
		}
		var list struct {
			Items []struct {
				Metadata struct{ Name string } `json:"metadata"`
			} `json:"items"`
		}
		if err := json.Unmarshal(out, &list); err != nil {
			return fmt.Errorf("kcrictl pods -o json: %w", err)
		}
		var names []string
		for _, item := range list.Items {
			names = append(names, item.Metadata.Name)
		}
		if done(names) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return errors.New("timed out after 60 s")
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func httpGet(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

func removeAllManifests(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
