package cri

import (
	"bytes"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestStreamTokensAreSingleUse(t *testing.T) {
	tokens := newStreamTokens()
	req := &runtimeapi.ExecRequest{ContainerId: "c"}
	token, err := tokens.insert(req)
	if err != nil {
		t.Fatal(err)
	}
	if got := tokens.consume(token); got != req {
		t.Fatalf("consume: %v", got)
	}
	if got := tokens.consume(token); got != nil {
		t.Errorf("second consume: %v", got)
	}
	if got := tokens.consume("unknown"); got != nil {
		t.Errorf("unknown token: %v", got)
	}
	expired, _ := tokens.insert(req)
	tokens.entries[expired] = tokenEntry{req: req, expires: time.Now().Add(-time.Second)}
	if got := tokens.consume(expired); got != nil {
		t.Errorf("expired token: %v", got)
	}
}

func TestStreamTokensLimit(t *testing.T) {
	tokens := newStreamTokens()
	for range maxStreamsInFlight {
		if _, err := tokens.insert(&runtimeapi.PortForwardRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tokens.insert(&runtimeapi.PortForwardRequest{}); err == nil {
		t.Error("insert beyond the limit succeeded")
	}
}

func TestWriteLogLine(t *testing.T) {
	var stdout, stderr bytes.Buffer
	for _, line := range []string{
		"2026-11-27T06:00:00.1Z stdout F hello world\n",
		"2026-11-27T06:00:00.2Z stderr P part-\n",
		"2026-11-27T06:00:00.3Z stderr F two\n",
		"2026-11-27T06:00:00.4Z stdout F \n",
		"garbage\n",
	} {
		if err := writeLogLine([]byte(line), &stdout, &stderr); err != nil {
			t.Fatal(err)
		}
	}
	if stdout.String() != "hello world\n\n" || stderr.String() != "part-two\n" {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

func TestCheckStreams(t *testing.T) {
	for _, tc := range []struct {
		stdin, stdout, stderr, tty bool
		ok                         bool
	}{
		{stdout: true, ok: true},
		{stdin: true, stdout: true, tty: true, ok: true},
		{stdout: true, stderr: true, tty: true},
		{tty: true},
	} {
		err := checkStreams("exec", tc.stdin, tc.stdout, tc.stderr, tc.tty)
		if (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc, err)
		}
	}
}

func TestCommandStatus(t *testing.T) {
	if got := string(commandStatus(nil)); !strings.Contains(got, `"status":"Success"`) {
		t.Errorf("success: %s", got)
	}
	got := string(commandStatus(exitError(3)))
	if !strings.Contains(got, `"reason":"NonZeroExitCode"`) || !strings.Contains(got, `"message":"3"`) {
		t.Errorf("exit 3: %s", got)
	}
}
