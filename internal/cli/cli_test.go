package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type echo struct {
	Name  string
	Files []string
	err   error
}

func (e *echo) SetArgs(a []string) error { e.Files = a; return nil }
func (e *echo) Run(_ context.Context, out io.Writer) error {
	_, _ = io.WriteString(out, "hello "+e.Name+"\n")
	return e.err
}

func program(runErr error) (*Program, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	p := &Program{
		Name: "prog", Summary: "does things.",
		Commands: []*Command{{
			Name: "greet", Args: "[--name N] FILE...", Summary: "greets", Help: "Reads GREETING.",
			New: func(fs *flag.FlagSet) Runner {
				e := &echo{err: runErr}
				fs.StringVar(&e.Name, "name", "world", "who to greet")
				return e
			},
		}},
		Code:   func(error) int { return 7 },
		Stdout: &stdout, Stderr: &stderr,
	}
	return p, &stdout, &stderr
}

func TestMain_(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		runErr      error
		code        int
		out, errOut string
	}{
		{"run", []string{"greet", "--name", "you", "a.yaml"}, nil, 0, "hello you", ""},
		{"command help", []string{"greet", "--help"}, nil, 0, "Usage: prog greet [--name N] FILE...\n\ngreets\n\nReads GREETING.\n\nFlags:\n  -name string\n    \twho to greet (default \"world\")\n", ""},
		{"help command", []string{"help", "greet"}, nil, 0, "Reads GREETING.", ""},
		{"program help", []string{"--help"}, nil, 0, "prog greet", ""},
		{"version", []string{"--version"}, nil, 0, "prog ", ""},
		{"no command", nil, nil, ExitUsage, "", "prog: no command given"},
		{"unknown command", []string{"wave"}, nil, ExitUsage, "", `prog: unknown command "wave"`},
		{"unknown flag", []string{"greet", "--nope"}, nil, ExitUsage, "", "prog greet: flag provided but not defined: -nope\n\nUsage: prog greet"},
		{"usage error from Run", []string{"greet"}, Usagef("name a file"), ExitUsage, "hello", "prog greet: name a file"},
		{"failure", []string{"greet"}, errors.New("boom"), 7, "hello", "prog: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, stdout, stderr := program(tt.runErr)
			assert.Equal(t, tt.code, p.Main(context.Background(), tt.args), stderr.String())
			assert.Contains(t, stdout.String(), tt.out)
			assert.Contains(t, stderr.String(), tt.errOut)
		})
	}
}

func TestVersion(t *testing.T) {
	// A test binary has build information; its revision depends on how it was built.
	assert.Regexp(t, `^\S+ \(commit \S+.*, go1\.`, Version())
}

// The first signal cancels the context; a second one exits at once with 128 + its number.
func TestNotifyContext(t *testing.T) {
	exited := make(chan int, 1)
	exit = func(code int) { exited <- code }
	t.Cleanup(func() { exit = osExit })
	var stderr syncBuffer
	ctx, stop := NotifyContext(context.Background(), "prog", &stderr)
	defer stop()
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGTERM))
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the first SIGTERM did not cancel the context")
	}
	assert.ErrorContains(t, context.Cause(ctx), "stopped by terminated")
	select {
	case code := <-exited:
		t.Fatalf("exited (%d) after one signal", code)
	default:
	}
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGINT))
	select {
	case code := <-exited:
		assert.Equal(t, 128+int(syscall.SIGINT), code)
	case <-time.After(10 * time.Second):
		t.Fatal("the second signal did not exit")
	}
	assert.Contains(t, stderr.String(), "a second signal exits at once")
	assert.Contains(t, stderr.String(), "interrupt again: exiting at once")
}
