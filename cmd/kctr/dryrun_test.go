package main

import (
	"bytes"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestRunDryRunPrintsPod needs no containerd: the flags become a Pod that
// decodes strictly with the real k8s.io/api types.
func TestRunDryRunPrintsPod(t *testing.T) {
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.Run([]string{"kctr", "run", "--dry-run", "--name", "Web_1", "-p", "8080:80", "-e", "A=b",
		"-v", "/srv/www:/usr/share/www:ro", "--memory", "256m", "--cpus", "1.5", "--restart", "always",
		"--cap-add", "net_admin", "-u", "1000:1000", "--read-only", "--pids-limit", "10",
		"registry.local/web:1", "httpd", "-f"})
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(out.Bytes(), &pod); err != nil {
		t.Fatalf("manifest does not decode strictly: %v\n%s", err, out.String())
	}
	c := pod.Spec.Containers[0]
	switch {
	case pod.Kind != "Pod" || pod.APIVersion != "v1" || pod.Name != "web-1":
		t.Errorf("meta: %s %s %s", pod.APIVersion, pod.Kind, pod.Name)
	case c.Image != "registry.local/web:1" || strings.Join(c.Args, " ") != "httpd -f" || len(c.Command) != 0:
		t.Errorf("image/args: %s %v %v", c.Image, c.Command, c.Args)
	case len(c.Ports) != 1 || c.Ports[0].HostPort != 8080 || c.Ports[0].ContainerPort != 80 || c.Ports[0].Protocol != corev1.ProtocolTCP:
		t.Errorf("ports: %+v", c.Ports)
	case len(c.Env) != 1 || c.Env[0].Name != "A" || c.Env[0].Value != "b":
		t.Errorf("env: %+v", c.Env)
	case len(pod.Spec.Volumes) != 1 || pod.Spec.Volumes[0].HostPath.Path != "/srv/www" || !c.VolumeMounts[0].ReadOnly || c.VolumeMounts[0].MountPath != "/usr/share/www":
		t.Errorf("volumes: %+v %+v", pod.Spec.Volumes, c.VolumeMounts)
	case c.Resources.Limits.Memory().Value() != 256<<20 || c.Resources.Limits.Cpu().MilliValue() != 1500:
		t.Errorf("limits: %v", c.Resources.Limits)
	case pod.Spec.RestartPolicy != corev1.RestartPolicyAlways:
		t.Errorf("restart policy %s", pod.Spec.RestartPolicy)
	case c.SecurityContext == nil || *c.SecurityContext.RunAsUser != 1000 || *c.SecurityContext.RunAsGroup != 1000 || !*c.SecurityContext.ReadOnlyRootFilesystem || c.SecurityContext.Capabilities.Add[0] != "NET_ADMIN":
		t.Errorf("security context: %+v", c.SecurityContext)
	}
	if !strings.Contains(errOut.String(), "--pids-limit") {
		t.Errorf("no warning about --pids-limit: %q", errOut.String())
	}

	out.Reset()
	if err := app.Run([]string{"kctr", "run", "--dry-run", "-u", "www-data", "busybox"}); err == nil || !strings.Contains(err.Error(), "numeric uid") {
		t.Errorf("a user name in a Pod: %v", err)
	}
}

func TestCompletion(t *testing.T) {
	app := newApp()
	var out bytes.Buffer
	app.Writer = &out
	if err := app.Run([]string{"kctr", "completion", "bash"}); err != nil || !strings.Contains(out.String(), "complete -o default -F _kctr_complete kctr") {
		t.Fatalf("bash: %v %q", err, out.String())
	}
	if err := newApp().Run([]string{"kctr", "completion", "fish"}); err == nil {
		t.Fatal("fish accepted")
	}
}
