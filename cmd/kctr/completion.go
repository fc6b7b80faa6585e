package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// The scripts ask kctr itself for candidates (urfave/cli's
// --generate-bash-completion), so they follow the commands and flags of the
// installed version.
const bashCompletion = `# kctr bash completion: source <(kctr completion bash)
_kctr_complete() {
	local words=("${COMP_WORDS[@]:0:COMP_CWORD}")
	local candidates
	candidates=$("${words[0]}" "${words[@]:1}" --generate-bash-completion 2>/dev/null)
	COMPREPLY=($(compgen -W "${candidates}" -- "${COMP_WORDS[COMP_CWORD]}"))
}
complete -o default -F _kctr_complete kctr
`

const zshCompletion = `#compdef kctr
# kctr zsh completion: source <(kctr completion zsh)
_kctr() {
	local -a candidates
	candidates=(${(f)"$(${words[1]} ${words[2,CURRENT-1]} --generate-bash-completion 2>/dev/null)"})
	_describe 'kctr' candidates
}
compdef _kctr kctr
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash or zsh)",
		ArgsUsage: "bash|zsh",
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				fmt.Fprint(c.App.Writer, bashCompletion)
			case "zsh":
				fmt.Fprint(c.App.Writer, zshCompletion)
			default:
				return fmt.Errorf("completion: want bash or zsh, got %q", c.Args().First())
			}
			return nil
		},
	}
}
