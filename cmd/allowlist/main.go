// Command allowlist is the cross-government allow-list service: the
// registry (serve), its administration (token, import, export, audit,
// backup, keygen), staff look-ups (check) and the DNS resolver (resolve).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"serve":        {"run the registry (REST API)", runServe},
		"token create": {"create an API token and print it", runTokenCreate},
		"token list":   {"list API tokens (never their secrets)", runTokenList},
		"token revoke": {"revoke an API token by id", runTokenRevoke},
		"tsig create":  {"create a zone-transfer (TSIG) key; print NAME:SECRET", runTSIGCreate},
		"tsig list":    {"list zone-transfer keys (never their secrets)", runTSIGList},
		"tsig revoke":  {"revoke a zone-transfer key by id", runTSIGRevoke},
		"check":        {"check whether a tool (its name, a web address or a domain) is allowed", runCheck},
		"audit verify": {"verify the audit log's hash chain", runAuditVerify},
		"import":       {"import a YAML catalogue", runImport},
		"export":       {"export the registry as a YAML catalogue", runExport},
		"keygen":       {"create the list-signing key if missing; print its public key", runKeygen},
		"backup":       {"write a consistent copy of a live database", runBackup},
		"resolve":      {"run the DNS resolver at a department's edge", runResolve},
		"demo-dns":     {"answer every DNS name with a documentation address, to try the resolver (make demo); not for production", runDemoDNS},

		"common-ground": {"which tools can these departments all use?", runCommonGround},
	}
}

// errSaid is an error already printed: the exit status is all that is left.
var errSaid = errors.New("")

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: allowlist COMMAND [flags]  (allowlist COMMAND --help for its flags)")
	fmt.Fprintln(w, "\ncommands:")
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].summary)
	}
}

// isGroup says whether name is the first word of two-word commands.
func isGroup(name string) bool {
	for n := range commands {
		if strings.HasPrefix(n, name+" ") {
			return true
		}
	}
	return false
}

func groupUsage(w io.Writer, group string) {
	fmt.Fprintf(w, "usage: allowlist %s COMMAND [flags]  (allowlist %s COMMAND --help for its flags)\n\ncommands:\n", group, group)
	var names []string
	for n := range commands {
		if strings.HasPrefix(n, group+" ") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].summary)
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 1 && args[0] == "help" {
		// "allowlist help check" is "allowlist check --help".
		return run(append(args[1:], "--help"), stdout, stderr)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	name := args[0]
	rest := args[1:]
	if _, ok := commands[name]; !ok && len(args) > 1 {
		if _, ok := commands[args[0]+" "+args[1]]; ok {
			name, rest = args[0]+" "+args[1], args[2:]
		}
	}
	cmd, ok := commands[name]
	if !ok && isGroup(name) {
		// "allowlist token" or "allowlist token --help": the group's commands.
		help := len(rest) > 0 && (rest[0] == "-h" || rest[0] == "--help" || rest[0] == "help")
		w := stderr
		if help {
			w = stdout
		} else if len(rest) > 0 {
			fmt.Fprintf(stderr, "allowlist: unknown command %q\n", name+" "+rest[0])
		}
		groupUsage(w, name)
		if help {
			return 0
		}
		return 2
	}
	if !ok {
		words := args[:1]
		if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
			words = args[:2]
		}
		fmt.Fprintf(stderr, "allowlist: unknown command %q\n", strings.Join(words, " "))
		usage(stderr)
		return 2
	}
	if asksHelp(rest) {
		// Help that was asked for goes to standard output, as the
		// groups' and the command list's do; it is printed before any
		// work is done.
		stderr = stdout
	}
	err := cmd.run(rest, stdout, stderr)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintf(stderr, "allowlist %s: %v\n", name, ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "allowlist %s: %v\n", name, err)
	return 1
}

// newFlags makes a flag set whose --help prints the command's usage.
func newFlags(name, usageLine string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		// The usage line, what the command does, then any longer
		// explanation that followed the usage line.
		line, more, _ := strings.Cut(usageLine, "\n\n")
		fmt.Fprintf(stderr, "usage: allowlist %s\n\n%s\n\n", line, commands[name].summary)
		if more != "" {
			fmt.Fprintf(stderr, "%s\n\n", more)
		}
		fmt.Fprintln(stderr, "flags:")
		fs.PrintDefaults()
	}
	return fs
}

// asksHelp says whether a command's arguments ask for its help.
func asksHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// parse parses flags, allowing them after positional arguments too. A
// mistake in them is a usage error (exit 2) that the flag package has
// already printed, with the usage: it is not said again.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &exitError{code: 2, err: errSaid}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
