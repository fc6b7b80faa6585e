package kubelet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

const goodPod = `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: main
    image: busybox:1.36
    ports: [{containerPort: 80}]
`

func TestDecodeManifestErrorsNameFileAndField(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // substrings of the error
	}{
		{"unknown field", strings.Replace(goodPod, "image:", "imagee:", 1), []string{`unknown field "spec.containers[0].imagee"`}},
		{"missing image", strings.Replace(goodPod, "    image: busybox:1.36\n", "", 1), []string{"spec.containers[0].image", "Required"}},
		{"bad name", strings.Replace(goodPod, "name: web", "name: Web_1", 1), []string{"metadata.name", "Web_1"}},
		{"bad port", strings.Replace(goodPod, "containerPort: 80", "containerPort: 70000", 1), []string{"spec.containers[0].ports[0].containerPort"}},
		{"bad restart policy", strings.Replace(goodPod, "spec:\n", "spec:\n  restartPolicy: Sometimes\n", 1), []string{"spec.restartPolicy", "Sometimes"}},
		{"missing volume", strings.Replace(goodPod, "    ports:", "    volumeMounts: [{name: data, mountPath: /data}]\n    ports:", 1), []string{"spec.containers[0].volumeMounts[0].name", "data"}},
		{"unsupported volume", goodPod + "  volumes: [{name: cfg, configMap: {name: x}}]\n", []string{"spec.volumes[0]", "hostPath or emptyDir"}},
		{"unsupported fieldRef", strings.Replace(goodPod, "    ports:", "    env: [{name: X, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}]\n    ports:", 1), []string{"spec.containers[0].env[0].valueFrom.fieldRef.fieldPath"}},
		{"duplicate container", goodPod + "  - name: main\n    image: busybox\n", []string{"spec.containers[1].name", "Duplicate"}},
		{"probe port name", strings.Replace(goodPod, "    ports:", "    livenessProbe: {httpGet: {port: web}}\n    ports:", 1), []string{"spec.containers[0].livenessProbe.httpGet.port"}},
		{"lifecycle hook", strings.Replace(goodPod, "    ports:", "    lifecycle: {preStop: {exec: {command: [sh]}}}\n    ports:", 1), []string{"spec.containers[0].lifecycle"}},
		{"user namespace", strings.Replace(goodPod, "spec:\n", "spec:\n  hostUsers: false\n", 1), []string{"spec.hostUsers"}},
		{"not a pod", strings.Replace(goodPod, "kind: Pod", "kind: Deployment", 1), []string{"apiVersion/kind"}},
		{"yaml syntax", "apiVersion: v1\nkind: Pod\nmetadata: {name: x\n", []string{"invalid YAML"}},
		{"wrong type", strings.Replace(goodPod, "containerPort: 80", "containerPort: eighty", 1), []string{"containerPort"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := DecodeManifest("/m/pod.yaml", []byte(tt.doc), "node1")
			if len(ms) != 1 || ms[0].Err == nil {
				t.Fatalf("want one failed document, got %+v", ms)
			}
			msg := ms[0].Err.Error()
			for _, want := range append([]string{"/m/pod.yaml"}, tt.want...) {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
		})
	}
}

func TestDecodeManifestMultiDocumentAndDefaults(t *testing.T) {
	yamlDocs := goodPod + "---\n# comment only\n---\n" + strings.Replace(goodPod, "name: web", "name: db\n  namespace: kube-system", 1)
	ms := DecodeManifest("/m/a.yaml", []byte(yamlDocs), "node1")
	if len(ms) != 2 {
		t.Fatalf("got %d documents, want 2 (the empty one skipped)", len(ms))
	}
	for _, m := range ms {
		if m.Err != nil {
			t.Fatal(m.Err)
		}
	}
	web, db := ms[0].Pod, ms[1].Pod
	if web.Namespace != "default" || db.Namespace != "kube-system" {
		t.Errorf("namespaces %q %q", web.Namespace, db.Namespace)
	}
	if web.Spec.RestartPolicy != v1.RestartPolicyAlways || *web.Spec.TerminationGracePeriodSeconds != 30 ||
		web.Spec.Containers[0].ImagePullPolicy != v1.PullIfNotPresent || web.Spec.NodeName != "node1" {
		t.Errorf("defaults not applied: %+v", web.Spec)
	}

	jsonDocs := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"b"},"spec":{"containers":[{"name":"c","image":"busybox:latest"}]}}`
	ms = DecodeManifest("/m/b.json", []byte(jsonDocs), "node1")
	if len(ms) != 2 || ms[0].Err != nil || ms[1].Err != nil {
		t.Fatalf("JSON stream: %+v", ms)
	}
	if p := ms[0].Pod.Spec.Containers[0].ImagePullPolicy; p != v1.PullAlways {
		t.Errorf("untagged image pull policy = %s, want Always", p)
	}
}

func TestManifestUIDStable(t *testing.T) {
	uid := func(doc, node string) string {
		t.Helper()
		ms := DecodeManifest("/m/p.yaml", []byte(doc), node)
		if ms[0].Err != nil {
			t.Fatal(ms[0].Err)
		}
		return string(ms[0].Pod.UID)
	}
	base := uid(goodPod, "node1")
	if len(base) != 32 {
		t.Errorf("UID %q is not 32 hex digits", base)
	}
	if again := uid(goodPod, "node1"); again != base {
		t.Errorf("same manifest, different UID: %s %s", base, again)
	}
	reformatted := "# a comment\n" + strings.Replace(goodPod, "ports: [{containerPort: 80}]", "ports:\n    - containerPort: 80", 1)
	if got := uid(reformatted, "node1"); got != base {
		t.Errorf("comments and formatting changed the UID: %s %s", base, got)
	}
	if got := uid(goodPod, "node2"); got == base {
		t.Error("another node gave the same UID")
	}
	if got := uid(strings.Replace(goodPod, "busybox:1.36", "busybox:1.37", 1), "node1"); got == base {
		t.Error("a changed manifest kept its UID")
	}
}

func TestLoadManifestsKeepsGoodBesideBroken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("good.yaml", goodPod)
	write("broken.yaml", strings.Replace(goodPod, "name: web", "name: bad", 1)+"    bogus: 1\n")
	write("dup.yaml", goodPod)
	write(".hidden.yaml", "not even yaml: [")
	ms, err := LoadManifests(dir, "node1")
	if err != nil {
		t.Fatal(err)
	}
	byFile := map[string]Manifest{}
	for _, m := range ms {
		byFile[filepath.Base(m.File)] = m
	}
	if len(ms) != 3 {
		t.Fatalf("got %d documents, want 3 (hidden file ignored)", len(ms))
	}
	if byFile["broken.yaml"].Err == nil || byFile["broken.yaml"].FullName() != "default/bad" {
		t.Errorf("broken: %+v", byFile["broken.yaml"])
	}
	// Files load in name order: dup.yaml defines default/web first.
	if byFile["dup.yaml"].Err != nil || byFile["good.yaml"].Err == nil || !strings.Contains(byFile["good.yaml"].Err.Error(), "already defined") {
		t.Errorf("duplicate pod: dup %v, good %v", byFile["dup.yaml"].Err, byFile["good.yaml"].Err)
	}
	if missing, err := LoadManifests(filepath.Join(dir, "nope"), "node1"); err != nil || len(missing) != 0 {
		t.Errorf("missing dir: %v %v", missing, err)
	}
}

func TestDefaultPullPolicy(t *testing.T) {
	for image, want := range map[string]v1.PullPolicy{
		"busybox":              v1.PullAlways,
		"busybox:latest":       v1.PullAlways,
		"busybox:1.36":         v1.PullIfNotPresent,
		"registry:5000/a/b":    v1.PullAlways,
		"registry:5000/a/b:v1": v1.PullIfNotPresent,
		"busybox@sha256:" + strings.Repeat("a", 64): v1.PullIfNotPresent,
	} {
		if got := defaultPullPolicy(image); got != want {
			t.Errorf("defaultPullPolicy(%q) = %s, want %s", image, got, want)
		}
	}
}
