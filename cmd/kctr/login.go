package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/kctr/kctr/images"
)

// loginTimeout bounds the registry check, token service included.
const loginTimeout = 30 * time.Second

func loginCommands() []*cli.Command {
	return []*cli.Command{loginCommand(), logoutCommand()}
}

func loginCommand() *cli.Command {
	return &cli.Command{
		Name:      "login",
		Usage:     "check credentials with a registry and store them in Docker's config.json",
		ArgsUsage: "[SERVER]",
		Description: "SERVER defaults to Docker Hub. The registry is reached through --hosts-dir\n" +
			"(its CA and TLS settings), never through a mirror.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "username", Aliases: []string{"u"}, Usage: "user name"},
			&cli.StringFlag{Name: "password", Aliases: []string{"p"}, Usage: "password (visible to other users of this machine; prefer --password-stdin)"},
			&cli.BoolFlag{Name: "password-stdin", Usage: "read the password from stdin"},
		},
		Action: loginAction,
	}
}

// loginInput is what the login flags and prompts produce.
type loginInput struct {
	server   string
	username string
	password string
	// fromStdin and onCommandLine say where the password came from.
	fromStdin, onCommandLine bool
}

// parseLoginFlags checks the flag combinations Docker refuses and reads a
// password from stdin; it never prompts.
func parseLoginFlags(c *cli.Context) (loginInput, error) {
	in := loginInput{username: c.String("username"), password: c.String("password")}
	if c.NArg() > 1 {
		return in, fmt.Errorf("login: want at most one SERVER, got %d arguments", c.NArg())
	}
	in.server = c.Args().First()
	in.onCommandLine = c.IsSet("password")
	if c.Bool("password-stdin") {
		if in.onCommandLine {
			return in, fmt.Errorf("login: --password and --password-stdin are mutually exclusive")
		}
		if in.username == "" {
			return in, fmt.Errorf("login: --password-stdin needs --username")
		}
		password, err := readPasswordLine(c.App.Reader)
		if err != nil {
			return in, fmt.Errorf("login: read password from stdin: %w", err)
		}
		in.password, in.fromStdin = password, true
	}
	return in, nil
}

// readPasswordLine reads all of r and drops the line end a shell or
// `echo` adds.
func readPasswordLine(r io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(data), "\r\n"), nil
}

func loginAction(c *cli.Context) error {
	quietContainerdLogs(c)
	in, err := parseLoginFlags(c)
	if err != nil {
		return err
	}
	if in.onCommandLine {
		fmt.Fprintln(c.App.ErrWriter, "WARNING! Using --password on the command line is insecure (other users can see it). Use --password-stdin.")
	}
	host, err := images.RegistryHost(in.server)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	ctx, cancel := context.WithTimeout(c.Context, loginTimeout)
	defer cancel()
	registry := images.RegistryOptions{HostsDir: c.String("hosts-dir"), Insecure: c.Bool("insecure-registry")}

	auth := images.AuthConfig{Username: in.username, Password: in.password}
	verified := false
	if in.username == "" && in.password == "" {
		// Like Docker, first try what config.json already has, and ask
		// only when there is nothing or the registry refuses it.
		stored, err := images.StoredCredentials("", host)
		if err == nil && stored != (images.AuthConfig{}) {
			err := registry.Login(ctx, host, stored)
			if err != nil && (!errdefs.IsUnauthorized(err) || !stdioIsTerminal(c.App.Reader)) {
				return err
			}
			if err == nil {
				auth, verified = stored, true
			}
		}
	}
	if !verified {
		if auth.Password == "" {
			if auth, err = promptCredentials(c, host, in.username); err != nil {
				return err
			}
		}
		if err := registry.Login(ctx, host, auth); err != nil {
			return err
		}
	}
	if _, err := images.StoreCredentials("", host, auth); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	fmt.Fprintln(c.App.Writer, "Login Succeeded")
	return nil
}

// promptCredentials asks for what is missing on the terminal, the
// password without echo.
func promptCredentials(c *cli.Context, host, username string) (images.AuthConfig, error) {
	f, ok := c.App.Reader.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return images.AuthConfig{}, fmt.Errorf("login to %s: give --username and --password-stdin (stdin is not a terminal to ask on)", host)
	}
	if username == "" {
		fmt.Fprintf(c.App.ErrWriter, "Username: ")
		line, err := bufio.NewReader(f).ReadString('\n')
		if err != nil {
			return images.AuthConfig{}, fmt.Errorf("login: read user name: %w", err)
		}
		username = strings.TrimSpace(line)
		if username == "" {
			return images.AuthConfig{}, fmt.Errorf("login to %s: user name is empty", host)
		}
	}
	fmt.Fprintf(c.App.ErrWriter, "Password: ")
	password, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(c.App.ErrWriter)
	if err != nil {
		return images.AuthConfig{}, fmt.Errorf("login: read password: %w", err)
	}
	return images.AuthConfig{Username: username, Password: string(password)}, nil
}

func logoutCommand() *cli.Command {
	return &cli.Command{
		Name:      "logout",
		Usage:     "remove a registry's credentials from Docker's config.json",
		ArgsUsage: "[SERVER]",
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return fmt.Errorf("logout: want at most one SERVER, got %d arguments", c.NArg())
			}
			host, err := images.RegistryHost(c.Args().First())
			if err != nil {
				return fmt.Errorf("logout: %w", err)
			}
			found, err := images.EraseCredentials("", host)
			if err != nil {
				return fmt.Errorf("logout: %w", err)
			}
			if !found {
				fmt.Fprintf(c.App.Writer, "Not logged in to %s\n", images.CredentialsKey(host))
				return nil
			}
			fmt.Fprintf(c.App.Writer, "Removing login credentials for %s\n", images.CredentialsKey(host))
			return nil
		},
	}
}

// quietContainerdLogs keeps containerd's client at warn level unless
// --debug, as newSession does for commands that talk to containerd.
func quietContainerdLogs(c *cli.Context) {
	level := "warn"
	if c.Bool("debug") {
		level = "debug"
	}
	_ = log.SetLevel(level)
}
