// Command allowlist-resolver is the DNS resolver alone, for a department's
// edge: the same resolver, config file and flags as `allowlist resolve`,
// without the registry's database, web and API code, so it is smaller on
// disk and in memory.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/cross-gov/allowlist/cmd/internal/resolvecmd"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("allowlist-resolver", flag.ContinueOnError)
	help := stderr
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			help = stdout // asked for: standard output, as allowlist's commands do
		}
	}
	fs.SetOutput(help)
	fs.Usage = func() {
		fmt.Fprintf(help, "usage: allowlist-resolver --config FILE\n\nrun the DNS resolver at a department's edge (the same as allowlist resolve)\n\nflags:\n")
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "YAML config file (see docs/resolver.md)")
	listen := fs.String("listen", "", "override listen")
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return 2 // the flag package has said what was wrong, with the usage
	}
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err == nil {
		err = resolvecmd.Run(*configPath, *listen, stdout, stderr)
	}
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "allowlist-resolver: %v\n", err)
	return 1
}
