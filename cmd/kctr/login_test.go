package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/kctr/kctr/internal/testenv"
)

func TestLoginLogout(t *testing.T) {
	ns, plainHost := setup(t)
	reg := testenv.NewDockerRegistry(t, testenv.DockerRegistryOptions{TLS: true, Users: map[string]string{"alice": "s3cret"}})
	host := reg.Host()
	hostsDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(hostsDir, host), 0o755); err != nil {
		t.Fatal(err)
	}
	hostsFile := fmt.Sprintf("server = %q\n[host.%q]\n  ca = %q\n", "https://"+host, "https://"+host, reg.CAFile())
	if err := os.WriteFile(filepath.Join(hostsDir, host, "hosts.toml"), []byte(hostsFile), 0o644); err != nil {
		t.Fatal(err)
	}
	dockerConfig := t.TempDir()
	configPath := filepath.Join(dockerConfig, "config.json")
	opts := cliOptions{dockerConfig: dockerConfig, hostsDir: hostsDir}

	wrong := opts
	wrong.stdin = "wrong\n"
	r := kx(t, ns, wrong, "login", "-u", "alice", "--password-stdin", host)
	failsWith(t, r, "login with a wrong password", host, "refused", `user "alice"`)
	if strings.Contains(r.stdout+r.stderr, "wrong") {
		t.Errorf("output shows the password: %q %q", r.stdout, r.stderr)
	}
	if _, err := os.Stat(configPath); !os.IsNotExist(err) {
		t.Fatalf("a refused login wrote %s (stat: %v)", configPath, err)
	}

	// The hosts dir decides TLS: one that insists on verifying, with no CA,
	// makes the certificate fail.
	strictDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(strictDir, host), 0o755); err != nil {
		t.Fatal(err)
	}
	strictFile := fmt.Sprintf("server = %q\n[host.%q]\n  skip_verify = false\n", "https://"+host, "https://"+host)
	if err := os.WriteFile(filepath.Join(strictDir, host, "hosts.toml"), []byte(strictFile), 0o644); err != nil {
		t.Fatal(err)
	}
	strict := opts
	strict.hostsDir, strict.stdin = strictDir, "s3cret"
	failsWith(t, kx(t, ns, strict, "login", "-u", "alice", "--password-stdin", host), "login without the CA", host, "certificate")
	if _, err := os.Stat(configPath); !os.IsNotExist(err) {
		t.Fatalf("a failed login wrote %s (stat: %v)", configPath, err)
	}

	login := ok(t, kx(t, ns, opts, "login", "-u", "alice", "-p", "s3cret", host), "login")
	if login.stdout != "Login Succeeded\n" {
		t.Errorf("login stdout %q", login.stdout)
	}
	if !strings.Contains(login.stderr, "--password-stdin") {
		t.Errorf("no warning about -p on stderr: %q", login.stderr)
	}
	if strings.Contains(login.stdout+login.stderr, "s3cret") {
		t.Errorf("login printed the password: %q %q", login.stdout, login.stderr)
	}
	st, err := os.Stat(configPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("config.json mode %v, want 0600", st.Mode().Perm())
	}
	if got := storedAuth(t, configPath, host); got != base64.StdEncoding.EncodeToString([]byte("alice:s3cret")) {
		t.Errorf("stored auth %q", got)
	}

	// Stored credentials are what push uses.
	pushed := host + "/private/busybox:1"
	ok(t, kx(t, ns, opts, "pull", "-q", plainHost+"/library/busybox:1"), "pull")
	ok(t, kx(t, ns, opts, "tag", plainHost+"/library/busybox:1", pushed), "tag")
	ok(t, kx(t, ns, opts, "push", pushed), "push with stored credentials")

	stdin := opts
	stdin.stdin = "s3cret\n"
	ok(t, kx(t, ns, stdin, "login", "--username", "alice", "--password-stdin", "https://"+host+"/v2/"), "login --password-stdin with a URL")

	logout := ok(t, kx(t, ns, opts, "logout", host), "logout")
	if logout.stdout != "Removing login credentials for "+host+"\n" {
		t.Errorf("logout printed %q", logout.stdout)
	}
	if got := storedAuth(t, configPath, host); got != "" {
		t.Errorf("credentials left after logout: %q", got)
	}
	again := ok(t, kx(t, ns, opts, "logout", host), "logout again")
	if again.stdout != "Not logged in to "+host+"\n" {
		t.Errorf("second logout printed %q", again.stdout)
	}
	failsWith(t, kx(t, ns, opts, "push", pushed), "push after logout", host, "denied")
}

// TestLoginPromptsOnATerminal types the user name and the password on a
// pseudo-terminal, as someone running plain `kctr login SERVER` would.
func TestLoginPromptsOnATerminal(t *testing.T) {
	ns, _ := setup(t)
	reg := testenv.NewDockerRegistry(t, testenv.DockerRegistryOptions{Users: map[string]string{"bob": "pa55"}})
	control, terminal := openPTY(t)
	defer control.Close()
	defer terminal.Close()
	if _, err := control.WriteString("bob\npa55\n"); err != nil {
		t.Fatal(err)
	}
	// What config.json holds is out of date: the registry refuses it, so
	// login asks.
	dockerConfig := t.TempDir()
	old := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, reg.Host(), base64.StdEncoding.EncodeToString([]byte("bob:old")))
	if err := os.WriteFile(filepath.Join(dockerConfig, "config.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	r := ok(t, kx(t, ns, cliOptions{stdinFile: terminal, dockerConfig: dockerConfig}, "login", reg.Host()), "login on a terminal")
	if r.stdout != "Login Succeeded\n" || !strings.Contains(r.stderr, "Username: ") || !strings.Contains(r.stderr, "Password: ") {
		t.Fatalf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	if got := storedAuth(t, filepath.Join(dockerConfig, "config.json"), reg.Host()); got != base64.StdEncoding.EncodeToString([]byte("bob:pa55")) {
		t.Errorf("stored auth %q", got)
	}
	// Logged in already: a plain login checks what is stored, asking nothing.
	again := ok(t, kx(t, ns, cliOptions{dockerConfig: dockerConfig}, "login", reg.Host()), "login with stored credentials")
	if again.stdout != "Login Succeeded\n" || strings.Contains(again.stderr, "Username") {
		t.Errorf("second login: stdout %q stderr %q", again.stdout, again.stderr)
	}
}

func storedAuth(t *testing.T, path, key string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Auths map[string]struct {
			Auth     string `json:"auth"`
			Password string `json:"password"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if cfg.Auths[key].Password != "" {
		t.Errorf("config.json holds a clear-text password field")
	}
	return cfg.Auths[key].Auth
}

func TestParseLoginFlags(t *testing.T) {
	tests := []struct {
		args    []string
		stdin   string
		want    loginInput
		wantErr string
	}{
		{args: []string{"-u", "bob", "-p", "pw", "reg:5000"}, want: loginInput{server: "reg:5000", username: "bob", password: "pw", onCommandLine: true}},
		{args: []string{"-u", "bob", "--password-stdin"}, stdin: "pw\r\n", want: loginInput{username: "bob", password: "pw", fromStdin: true}},
		{args: []string{"-u", "bob", "--password-stdin"}, stdin: "p w \n", want: loginInput{username: "bob", password: "p w ", fromStdin: true}},
		{args: []string{}, want: loginInput{}},
		{args: []string{"--password-stdin"}, wantErr: "needs --username"},
		{args: []string{"-u", "bob", "-p", "x", "--password-stdin"}, wantErr: "mutually exclusive"},
		{args: []string{"a", "b"}, wantErr: "at most one SERVER"},
	}
	for _, tt := range tests {
		var got loginInput
		var gotErr error
		app := &cli.App{
			Reader: strings.NewReader(tt.stdin),
			Commands: []*cli.Command{{
				Name:  "login",
				Flags: loginCommand().Flags,
				Action: func(c *cli.Context) error {
					got, gotErr = parseLoginFlags(c)
					return nil
				},
			}},
		}
		if err := app.Run(append([]string{"kctr", "login"}, tt.args...)); err != nil {
			t.Fatal(err)
		}
		if tt.wantErr != "" {
			if gotErr == nil || !strings.Contains(gotErr.Error(), tt.wantErr) {
				t.Errorf("%v: err %v, want %q", tt.args, gotErr, tt.wantErr)
			}
			continue
		}
		if gotErr != nil || got != tt.want {
			t.Errorf("%v: got %+v, %v; want %+v", tt.args, got, gotErr, tt.want)
		}
	}
}
