package main

import (
	"io"

	"github.com/cross-gov/allowlist/cmd/internal/resolvecmd"
)

func runResolve(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("resolve", "resolve --config FILE", stderr)
	configPath := fs.String("config", "", "YAML config file (see docs/resolver.md)")
	listen := fs.String("listen", "", "override listen")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	return resolvecmd.Run(*configPath, *listen, stdout, stderr)
}

// The registry's config files are read as the resolver's are: strictly,
// over defaults.
var loadYAML, parseLevel = resolvecmd.LoadYAML, resolvecmd.ParseLevel
