package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func samplePods() *v1.PodList {
	return &v1.PodList{Items: []v1.Pod{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "httpd"}, {Name: "side"}}},
			Status: v1.PodStatus{Phase: v1.PodRunning, PodIP: "10.243.0.4", ContainerStatuses: []v1.ContainerStatus{
				{Name: "httpd", Ready: true, RestartCount: 1, State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}},
				{Name: "side", RestartCount: 2, State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}},
			}},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: "default"},
			Status:     v1.PodStatus{Phase: v1.PodFailed, Reason: "FailedToLoad", Message: "bad.yaml: imagee"},
		},
	}}
}

func TestWritePodsTable(t *testing.T) {
	var out bytes.Buffer
	pods := samplePods()
	deleted := metav1.Now()
	pods.Items = append(pods.Items, v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "default", DeletionTimestamp: &deleted},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "app"}}},
		Status: v1.PodStatus{Phase: v1.PodRunning, PodIP: "10.243.0.5", ContainerStatuses: []v1.ContainerStatus{
			{Name: "app", Ready: true, State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}},
		}},
	})
	if err := writePods(&out, pods, "table"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("table:\n%s", out.String())
	}
	for i, want := range [][]string{
		{"NAMESPACE", "NAME", "PHASE", "READY", "RESTARTS", "IP", "CONTAINERS"},
		{"default", "web", "Running", "1/2", "3", "10.243.0.4", "httpd=Running,side=CrashLoopBackOff"},
		{"default", "bad", "Failed", "(FailedToLoad)", "0/0", "0", "-", "-"},
		{"default", "old", "Terminating", "1/1", "0", "10.243.0.5", "app=Running"},
	} {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("line %d: %q, want %q", i, got, want)
		}
	}
}

func TestFetchAndWriteJSONYAML(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/pods" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(samplePods())
	}))
	defer srv.Close()
	list, err := fetchPods(context.Background(), strings.TrimPrefix(srv.URL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 || list.Items[0].Status.PodIP != "10.243.0.4" {
		t.Fatalf("fetched %+v", list)
	}
	var out bytes.Buffer
	if err := writePods(&out, list, "json"); err != nil {
		t.Fatal(err)
	}
	var back v1.PodList
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || len(back.Items) != 2 {
		t.Errorf("json output does not round-trip: %v", err)
	}
	out.Reset()
	if err := writePods(&out, list, "yaml"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "podIP: 10.243.0.4") {
		t.Errorf("yaml output:\n%s", out.String())
	}
}

func TestFetchPodsAgentDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	if _, err := fetchPods(context.Background(), addr, time.Second); err == nil || !strings.Contains(err.Error(), "is kubelet-lite running") {
		t.Errorf("err = %v", err)
	}
}
