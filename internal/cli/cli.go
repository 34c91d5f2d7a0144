// Package cli is the command-line shape both binaries share: subcommands, each an options struct whose
// flags are bound before parsing and whose Run(ctx, out) does the work; per-command --help (exit 0);
// --version; usage errors with exit status 2; and signal handling (the first SIGINT or SIGTERM cancels
// the context, a second one exits at once).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// ExitUsage is the exit status of a command-line mistake, in both binaries.
const ExitUsage = 2

// Runner is a command with its options set: flags are bound to its fields, Run does the work and
// writes its result to out.
type Runner interface {
	Run(ctx context.Context, out io.Writer) error
}

// ArgsSetter is implemented by commands that take positional arguments (e.g. validate FILE...).
type ArgsSetter interface {
	SetArgs(args []string) error
}

// Command is one subcommand.
type Command struct {
	Name string
	// Args is the synopsis after the command name, e.g. "[--overlay DIR]".
	Args string
	// Summary is one line for the program's command list.
	Summary string
	// Help is printed by --help between the synopsis and the flags: what the command does, the
	// environment variables it reads, its exit codes.
	Help string
	// New returns the command's options with their flags bound to fs.
	New func(fs *flag.FlagSet) Runner
}

// Program is a binary's command line.
type Program struct {
	Name     string
	Summary  string
	Commands []*Command
	// Footer follows the command list in the program's usage.
	Footer string
	// Code maps an error of a command to the exit status; usage errors are always ExitUsage.
	Code   func(error) int
	Stdout io.Writer
	Stderr io.Writer
}

// UsageError is a command-line mistake: exit status 2, and the command's synopsis is shown.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a UsageError.
func Usagef(format string, a ...any) error { return &UsageError{Msg: fmt.Sprintf(format, a...)} }

// Usage is the program's usage text: its commands, one line each.
func (p *Program) Usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n\nUsage:\n", p.Name, p.Summary)
	width := len("--version")
	for _, c := range p.Commands {
		width = max(width, len(c.Name))
	}
	for _, c := range p.Commands {
		fmt.Fprintf(&b, "  %s %-*s  %s\n", p.Name, width, c.Name, c.Summary)
	}
	fmt.Fprintf(&b, "  %s %-*s  %s\n", p.Name, width, "help", "this text; `help COMMAND` or `COMMAND --help`: the command's flags and variables")
	fmt.Fprintf(&b, "  %s %-*s  %s\n", p.Name, width, "--version", "the version and commit it was built from")
	if p.Footer != "" {
		b.WriteString("\n" + strings.TrimRight(p.Footer, "\n") + "\n")
	}
	return b.String()
}

// help is a command's --help text: synopsis, description, flags.
func (p *Program) help(c *Command, fs *flag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: %s\n\n%s\n", strings.TrimSpace(p.Name+" "+c.Name+" "+c.Args), c.Summary)
	if c.Help != "" {
		b.WriteString("\n" + strings.TrimRight(c.Help, "\n") + "\n")
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		b.WriteString("\nFlags:\n")
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return b.String()
}

func (p *Program) command(name string) *Command {
	for _, c := range p.Commands {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Main runs the command line args (without the program name) and returns the exit status.
func (p *Program) Main(ctx context.Context, args []string) int {
	stdout, stderr := p.Stdout, p.Stderr
	if len(args) == 0 {
		fmt.Fprintf(stderr, "%s: no command given\n\n%s", p.Name, p.Usage())
		return ExitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c := p.command(args[1]); c != nil {
				fs := flag.NewFlagSet(p.Name+" "+c.Name, flag.ContinueOnError)
				c.New(fs)
				fmt.Fprint(stdout, p.help(c, fs))
				return 0
			}
			fmt.Fprintf(stderr, "%s: unknown command %q\n\n%s", p.Name, args[1], p.Usage())
			return ExitUsage
		}
		fmt.Fprint(stdout, p.Usage())
		return 0
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "%s %s\n", p.Name, Version())
		return 0
	}
	c := p.command(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "%s: unknown command %q\n\n%s", p.Name, args[0], p.Usage())
		return ExitUsage
	}
	fs := flag.NewFlagSet(p.Name+" "+c.Name, flag.ContinueOnError)
	// Errors and the help text are printed once, here.
	fs.SetOutput(io.Discard)
	r := c.New(fs)
	usage := func(err error) int {
		fmt.Fprintf(stderr, "%s %s: %v\n\n%s", p.Name, c.Name, err, p.help(c, fs))
		return ExitUsage
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, p.help(c, fs))
			return 0
		}
		return usage(err)
	}
	if s, ok := r.(ArgsSetter); ok {
		if err := s.SetArgs(fs.Args()); err != nil {
			return usage(err)
		}
	} else if fs.NArg() > 0 {
		return usage(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	err := r.Run(ctx, stdout)
	if err == nil {
		return 0
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		return usage(err)
	}
	fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
	if p.Code == nil {
		return 1
	}
	return p.Code(err)
}

// exit is os.Exit, replaced in tests.
var exit = os.Exit

// StoppedError is the cause of a context NotifyContext cancelled: the signal that stopped the command.
type StoppedError struct{ Signal os.Signal }

func (e *StoppedError) Error() string { return fmt.Sprintf("stopped by %v", e.Signal) }

// ExitCode is the conventional status of a process a signal ended: 128 + the signal's number (130 for
// SIGINT, 143 for SIGTERM).
func (e *StoppedError) ExitCode() int {
	if n, ok := e.Signal.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 130
}

// NotifyContext returns a context that is cancelled by the first SIGINT or SIGTERM (Kubernetes stopping
// the pod, Argo CD terminating the sync, Ctrl-C): the command stops cleanly, open transactions roll
// back. A second signal exits at once with 128 + its number, for a user who does not want to wait.
// stop releases the signals.
func NotifyContext(parent context.Context, name string, stderr io.Writer) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			fmt.Fprintf(stderr, "%s: %v: stopping (a second signal exits at once)\n", name, s)
			cancel(&StoppedError{Signal: s})
		case <-done:
			return
		}
		select {
		case s := <-ch:
			fmt.Fprintf(stderr, "%s: %v again: exiting at once\n", name, s)
			code := 130
			if n, ok := s.(syscall.Signal); ok {
				code = 128 + int(n)
			}
			exit(code)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// Version is the module version and the commit the binary was built from, as the Go toolchain
// stamped them (go build in a git checkout records vcs.revision; a build without one says unknown).
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (no build information)"
	}
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var rev, modified, when string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		case "vcs.time":
			when = ", " + s.Value
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	return fmt.Sprintf("%s (commit %s%s%s, %s)", version, rev, modified, when, bi.GoVersion)
}
