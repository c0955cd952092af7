// Command portcullis is the operator's tool: it checks the access declared
// in protos, lists who can call what, and runs the gateway and its parts.
//
//	portcullis check  [--image FILE]                  validate the permission catalog
//	portcullis access [--image FILE] [--format F]     list every method's requirements
//	       [--registry FILE] [--method M | --client ID | --permission P | --service S]
//	                                                  and the clients that can call it
//	portcullis dev                                    run the whole stack on one machine
//	portcullis version                                what this binary was built from
//
// Run "portcullis help" for every command.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand: its name, a one-line summary, and what it runs.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists every subcommand, in the order "help" shows them.
var commands = []command{
	{"check", "validate the permission catalog; exit 1 listing every problem", runCheck},
	{"access", "list every method and the permissions it requires; with --registry, the clients that can call it", runAccess},
	{"diff", "list every access change between two images, directories or commits; exit 1 if any loosens", runDiff},
	{"dev", "run the whole stack on one machine: issuer, example backends, gateway", runDev},
	{"gateway", "serve the gateway described by a configuration file", runGateway},
	{"backend", "serve an example backend (licensing or orders)", runBackend},
	{"issuer", "run the OAuth 2.0 token issuer, or rotate its signing key", runIssuer},
	{"clients", "add, list or revoke the token issuer's clients", runClients},
	{"version", "print what this binary was built from: version, VCS revision, Go (also --version)", runVersion},
	{"tokens", "revoke tokens: one, by its jti, or every token of a client", runTokens},
}

// errUsage reports a command line that is not understood; the command has
// printed why.
var errUsage = errors.New("usage")

// exitError carries a process exit code out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	// The first SIGINT or SIGTERM asks the command to stop cleanly: servers
	// drain and the exit status is 0. A second one kills the process.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command line args and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = append([]string{"version"}, args[1:]...)
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var exit exitError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		case errors.As(err, &exit):
			return exit.code
		default:
			fmt.Fprintf(stderr, "portcullis %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "portcullis: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: portcullis COMMAND [FLAGS]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun \"portcullis COMMAND -h\" for a command's flags.")
}

// newFlags returns a flag set for a subcommand that reports errors to
// stderr and returns them instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("portcullis "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args into fs, mapping a parse failure to errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return errUsage
	}
	return nil
}
