// Command kctr-logwriter is the container log writer that containerd's
// shim starts for kcrid and kctr (binary:// log driver): it turns a
// container's stdout and stderr into a CRI-format log file.
//
// kcrid and kctr can be their own log writer too, but a writer is started
// for every container, and this program imports nothing beyond the
// standard library and crilog, so it starts in a fraction of the time of
// the big binaries (see crilog.WriterExecutable).
package main

import (
	"os"

	"github.com/kctr/kctr/crilog"
)

func main() {
	os.Exit(crilog.RunWriter(os.Args))
}
