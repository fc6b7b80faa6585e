package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/kctr/kctr/endpoints"
)

func configCommand() *cli.Command {
	return &cli.Command{
		Name:      "config",
		Usage:     "get and set kcrictl client configuration options",
		ArgsUsage: "[<kcrictl options>]",
		Description: "kcrictl config --get runtime-endpoint\n   kcrictl config --set timeout=5\n   kcrictl config runtime-endpoint unix:///run/containerd/containerd.sock\n   kcrictl config --list\n\n" +
			"Keys: " + strings.Join(endpoints.Keys(), ", "),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "get", Usage: "show the option value"},
			&cli.StringSliceFlag{Name: "set", Usage: "set option (can specify multiple or separate values with commas: opt1=val1,opt2=val2)"},
			&cli.BoolFlag{Name: "list", Usage: "show all option values"},
		},
		Action: func(c *cli.Context) error {
			path := configPath(c)
			cfg, err := endpoints.LoadConfig(path)
			if errors.Is(err, fs.ErrNotExist) {
				cfg, err = &endpoints.Config{}, nil
			}
			if err != nil {
				return err
			}
			switch {
			case c.IsSet("get"):
				v, err := cfg.Get(c.String("get"))
				if err != nil {
					return err
				}
				fmt.Fprintln(out(c), v)
				return nil
			case c.Bool("list"):
				tw := tabwriter.NewWriter(out(c), 20, 1, 3, ' ', 0)
				fmt.Fprintln(tw, "KEY\tVALUE")
				for _, k := range endpoints.Keys() {
					v, _ := cfg.Get(k)
					fmt.Fprintf(tw, "%s\t%s\n", k, v)
				}
				return tw.Flush()
			case c.IsSet("set"):
				for _, s := range c.StringSlice("set") {
					for _, kv := range strings.Split(s, ",") {
						k, v, ok := strings.Cut(kv, "=")
						if !ok {
							return fmt.Errorf("--set %q: want key=value", kv)
						}
						if err := cfg.Set(strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
							return err
						}
					}
				}
			case c.NArg() == 2:
				if err := cfg.Set(c.Args().Get(0), c.Args().Get(1)); err != nil {
					return err
				}
			default:
				return fmt.Errorf("config: use --get KEY, --set KEY=VALUE, --list or KEY VALUE")
			}
			return cfg.Save(path)
		},
	}
}

// configPath is the file config reads and writes: --config, then
// $CRI_CONFIG_FILE, then /etc/crictl.yaml.
func configPath(c *cli.Context) string {
	cfg := configFrom(c)
	if p := cfg.Endpoints.ConfigPath; p != "" {
		return p
	}
	getenv := cfg.Endpoints.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if p := getenv(endpoints.EnvConfigFile); p != "" {
		return p
	}
	return endpoints.DefaultConfigPath
}

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "output shell completion code",
		ArgsUsage: "[bash|zsh|fish]",
		Action: func(c *cli.Context) error {
			shell := c.Args().First()
			if shell == "" {
				shell = "bash"
			}
			switch shell {
			case "bash":
				_, err := fmt.Fprint(out(c), bashCompletion)
				return err
			case "zsh":
				_, err := fmt.Fprint(out(c), zshCompletion)
				return err
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				_, err = fmt.Fprint(out(c), s)
				return err
			}
			return fmt.Errorf("completion: unsupported shell %q (bash, zsh or fish)", shell)
		},
	}
}

// The scripts ask kcrictl itself for candidates (urfave/cli's
// --generate-bash-completion), so they follow the command set.
const bashCompletion = `# kcrictl bash completion; source it or put it in /etc/bash_completion.d/
_kcrictl_complete() {
	local cur words
	cur="${COMP_WORDS[COMP_CWORD]}"
	words=("${COMP_WORDS[@]:0:COMP_CWORD}")
	if [[ "$cur" == -* ]]; then
		COMPREPLY=($(compgen -W "$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)" -- "$cur"))
	else
		COMPREPLY=($(compgen -W "$("${words[@]}" --generate-bash-completion 2>/dev/null)" -- "$cur"))
	fi
}
complete -o default -F _kcrictl_complete kcrictl
`

const zshCompletion = `#compdef kcrictl
# kcrictl zsh completion; put it in a directory of $fpath as _kcrictl
_kcrictl() {
	local -a opts
	opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
	_describe 'values' opts
}
compdef _kcrictl kcrictl
`
