package kubelet

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const fullPod = `apiVersion: v1
kind: Pod
metadata: {name: app, namespace: prod, labels: {tier: web}}
spec:
  hostNetwork: false
  securityContext: {runAsUser: 1000, runAsGroup: 3000}
  terminationGracePeriodSeconds: 5
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c]
    args: ['echo $(GREETING) $(MISSING) $$(ESCAPED)']
    workingDir: /work
    env:
    - {name: NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: GREETING, value: 'hi $(NAME) in $(NS)'}
    ports: [{containerPort: 80, hostPort: 8080}, {containerPort: 53, protocol: UDP}]
    volumeMounts:
    - {name: data, mountPath: /data}
    - {name: host, mountPath: /host, readOnly: true}
    resources:
      requests: {cpu: 250m, memory: 64Mi}
      limits: {cpu: 500m, memory: 128Mi}
    securityContext:
      runAsUser: 2000
      privileged: true
      readOnlyRootFilesystem: true
      capabilities: {add: [NET_ADMIN], drop: [ALL]}
  volumes:
  - {name: data, emptyDir: {}}
  - {name: host, hostPath: {path: /var/lib/thing}}
`

func decodeOne(t *testing.T, doc string) *Manifest {
	t.Helper()
	ms := DecodeManifest("/m/p.yaml", []byte(doc), "node1")
	if len(ms) != 1 || ms[0].Err != nil {
		t.Fatalf("decode: %+v", ms)
	}
	return &ms[0]
}

func TestBuildContainerConfig(t *testing.T) {
	m := decodeOne(t, fullPod)
	pod := m.Pod
	c := &pod.Spec.Containers[0]
	cfg, err := buildContainerConfig(c, containerContext{pod: pod, podIP: "10.1.2.3", restartCount: 2, backoff: 20 * time.Second, rootDir: "/root"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Metadata.Name != "main" || cfg.Metadata.Attempt != 2 || cfg.LogPath != "main/2.log" {
		t.Errorf("metadata %v, log path %q", cfg.Metadata, cfg.LogPath)
	}
	wantLabels := map[string]string{
		"io.kubernetes.pod.name": "app", "io.kubernetes.pod.namespace": "prod", "io.kubernetes.pod.uid": string(pod.UID),
		"io.kubernetes.container.name": "main", labelManagedBy: managedByValue,
	}
	if !reflect.DeepEqual(cfg.Labels, wantLabels) {
		t.Errorf("labels %v", cfg.Labels)
	}
	if cfg.Annotations[annotationRestartCount] != "2" || cfg.Annotations[annotationBackoff] != "20s" || cfg.Annotations[annotationGracePeriod] != "5" {
		t.Errorf("annotations %v", cfg.Annotations)
	}
	env := map[string]string{}
	for _, kv := range cfg.Envs {
		env[kv.Key] = string(kv.Value)
	}
	if env["NAME"] != "app" || env["NS"] != "prod" || env["IP"] != "10.1.2.3" || env["GREETING"] != "hi app in prod" {
		t.Errorf("env %v", env)
	}
	if want := []string{"echo hi app in prod $(MISSING) $(ESCAPED)"}; !reflect.DeepEqual(cfg.Args, want) {
		t.Errorf("args %q, want %q", cfg.Args, want)
	}
	if cfg.WorkingDir != "/work" {
		t.Errorf("workingDir %q", cfg.WorkingDir)
	}
	wantMounts := []*runtimeapi.Mount{
		{ContainerPath: "/data", HostPath: "/root/pods/" + string(pod.UID) + "/volumes/kubernetes.io~empty-dir/data"},
		{ContainerPath: "/host", HostPath: "/var/lib/thing", Readonly: true},
	}
	if len(cfg.Mounts) != 2 || cfg.Mounts[0].String() != wantMounts[0].String() || cfg.Mounts[1].String() != wantMounts[1].String() {
		t.Errorf("mounts %v", cfg.Mounts)
	}
	res := cfg.Linux.Resources
	if res.CpuShares != 256 || res.CpuQuota != 50000 || res.CpuPeriod != 100000 || res.MemoryLimitInBytes != 128<<20 {
		t.Errorf("resources %v", res)
	}
	sc := cfg.Linux.SecurityContext
	if sc.RunAsUser.GetValue() != 2000 || sc.RunAsGroup.GetValue() != 3000 || !sc.Privileged || !sc.ReadonlyRootfs {
		t.Errorf("security context %v", sc)
	}
	if !reflect.DeepEqual(sc.Capabilities.AddCapabilities, []string{"NET_ADMIN"}) || !reflect.DeepEqual(sc.Capabilities.DropCapabilities, []string{"ALL"}) {
		t.Errorf("capabilities %v", sc.Capabilities)
	}
}

func TestBuildSandboxConfig(t *testing.T) {
	m := decodeOne(t, fullPod)
	cfg := buildSandboxConfig(m.Pod, m.Hash, m.File, 1, "/logs", &runtimeapi.DNSConfig{Servers: []string{"1.1.1.1"}})
	if cfg.Metadata.Name != "app" || cfg.Metadata.Namespace != "prod" || cfg.Metadata.Uid != string(m.Pod.UID) || cfg.Metadata.Attempt != 1 {
		t.Errorf("metadata %v", cfg.Metadata)
	}
	if want := "/logs/prod_app_" + string(m.Pod.UID); cfg.LogDirectory != want {
		t.Errorf("log dir %q, want %q", cfg.LogDirectory, want)
	}
	if cfg.Hostname != "app" || cfg.Labels["tier"] != "web" || cfg.Labels[labelPodUID] != string(m.Pod.UID) {
		t.Errorf("hostname %q labels %v", cfg.Hostname, cfg.Labels)
	}
	if cfg.Annotations[annotationConfigHash] != m.Hash || cfg.Annotations[annotationConfigSource] != "file" || cfg.Annotations[annotationGracePeriod] != "5" {
		t.Errorf("annotations %v", cfg.Annotations)
	}
	if len(cfg.PortMappings) != 1 || cfg.PortMappings[0].HostPort != 8080 || cfg.PortMappings[0].ContainerPort != 80 {
		t.Errorf("port mappings %v", cfg.PortMappings)
	}
	if !cfg.Linux.SecurityContext.Privileged {
		t.Error("a privileged container needs a privileged sandbox")
	}
}

func TestDNSConfig(t *testing.T) {
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("# c\nnameserver 9.9.9.9\nsearch a.example b.example\noptions ndots:2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pod := &v1.Pod{Spec: v1.PodSpec{DNSPolicy: v1.DNSClusterFirst, DNSConfig: &v1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}}}}
	cfg, err := dnsConfig(pod, resolv)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Servers, ",") != "9.9.9.9,1.1.1.1" || strings.Join(cfg.Searches, ",") != "a.example,b.example" || strings.Join(cfg.Options, ",") != "ndots:2" {
		t.Errorf("dns %v", cfg)
	}
	pod.Spec.DNSPolicy = v1.DNSNone
	if cfg, _ := dnsConfig(pod, resolv); strings.Join(cfg.Servers, ",") != "1.1.1.1" {
		t.Errorf("dnsPolicy None: %v", cfg)
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "x", "B": "y"}
	for in, want := range map[string]string{
		"$(A)-$(B)": "x-y", "$$(A)": "$(A)", "$(C)": "$(C)", "$(A": "$(A", "cost $5": "cost $5", "$": "$",
	} {
		if got := expand(in, env); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}
