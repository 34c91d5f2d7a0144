// Package job holds the litemaas-sync subcommands: each is an options struct with
// Run(ctx, out) error, and errors carry the process exit code.
package job

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/sethvargo/go-envconfig"
	"k8s.io/client-go/dynamic"

	"github.com/litemaas-gitops/litemaas-gitops/internal/cli"
	"github.com/litemaas-gitops/litemaas-gitops/internal/config"
	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
)

// Exit codes, documented in the README and used by the Job's podFailurePolicy. A run stopped by a
// signal ends with 128 + its number (130 SIGINT, 143 SIGTERM).
const (
	ExitOK      = 0
	ExitFailed  = 1
	ExitInvalid = 2   // bad configuration or catalog, or an error no retry can fix
	ExitTimeout = 124 // the stack did not become ready within WAIT_TIMEOUT
)

// ExitError is an error with the exit code the process must end with, and what the status and the
// Event say about it. classify fills in what the error's chain tells.
type ExitError struct {
	Code int
	// Reason is one CamelCase word for the status ConfigMap and the Event (e.g. InvalidCatalog).
	Reason string
	// Setting is what the operator must change (a variable, a Role, a CA), for a permanent error.
	Setting string
	// File, Model and Field locate a catalog problem (the first one when there are several).
	File, Model, Field string
	Err                error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Code maps an error to its exit code.
func Code(err error) int {
	if err == nil {
		return ExitOK
	}
	return classify(err).Code
}

func invalid(err error) error { return &ExitError{Code: ExitInvalid, Err: err} }

// invalidInput is an exit-2 error that names the file, model and field at fault.
func invalidInput(file, model, field string, err error) error {
	return &ExitError{Code: ExitInvalid, Reason: "InvalidCatalog", File: file, Model: model, Field: field, Err: err}
}

// NewLogger returns the job's logger: JSON in the cluster (no terminal), text on a terminal. A nil w
// means stderr.
func NewLogger(w io.Writer, format string) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	if format == "auto" || format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// writeTerminationLog leaves the one-line outcome where Kubernetes shows it as the container's
// termination message (and Argo CD as the hook's message). Only when the file exists: outside a pod
// there is nothing to write to.
func writeTerminationLog(path, msg string) {
	if path == "" {
		return
	}
	if _, err := os.Stat(path); err != nil {
		return
	}
	// Kubernetes keeps at most 4 KiB of it.
	if len(msg) > 4000 {
		msg = msg[:4000]
	}
	_ = os.WriteFile(path, []byte(strings.TrimSpace(msg)+"\n"), 0o644)
}

// Program is the litemaas-sync command line: reconcile, secrets and validate, each an options struct
// with Run(ctx, out), read from env (the process environment in production).
func Program(env envconfig.Lookuper, stdout, stderr io.Writer) *cli.Program {
	return &cli.Program{
		Name:    "litemaas-sync",
		Summary: "keeps LiteLLM and the LiteMaaS database in line with a models catalog.",
		Commands: []*cli.Command{
			{
				Name: "reconcile", Args: "[--dry-run]",
				Summary: "wait for the stack, migrate, register the catalog's models (PostSync hook)",
				Help:    "Configuration is read from the environment:\n" + config.Describe(config.Reconcile{}) + "\nA model's apiKeyEnv names one more variable: its API key.\n\n" + exitCodes,
				New: func(fs *flag.FlagSet) cli.Runner {
					o := &ReconcileOptions{Env: env, Log: stderr, TerminationLog: "/dev/termination-log"}
					fs.BoolVar(&o.DryRun, "dry-run", false, "print the plan, write nothing anywhere (as DRY_RUN=true)")
					return o
				},
			},
			{
				Name: "secrets", Summary: "create missing Secrets, fill missing keys (PreSync hook)",
				Help: "Configuration is read from the environment:\n" + config.Describe(config.Secrets{}) + "\n" + exitCodes,
				New: func(*flag.FlagSet) cli.Runner {
					return &SecretsOptions{Env: env, Log: stderr, TerminationLog: "/dev/termination-log"}
				},
			},
			{
				Name: "validate", Args: "FILE...",
				Summary: "check catalog files offline (exit 0 valid, 2 invalid)",
				Help:    "Needs no cluster, database or LiteLLM. Every problem is reported, each naming file, line,\nmodel and field.",
				New:     func(*flag.FlagSet) cli.Runner { return &ValidateOptions{} },
			},
		},
		Footer: "Configuration is read from the environment; `litemaas-sync COMMAND --help` lists it.\n" + exitCodes,
		Code:   Code,
		Stdout: stdout,
		Stderr: stderr,
	}
}

const exitCodes = "Exit codes: 0 done, 1 failed, 2 invalid configuration, catalog or usage, or an error no retry can\nfix (wrong credentials, untrusted certificate), 124 timed out waiting for the stack, 130/143 stopped by\nSIGINT/SIGTERM."

func usageError(format string, a ...any) error { return cli.Usagef(format, a...) }

// served reports whether the API server serves a group/version (kube.GroupVersionServed).
type served = func(ctx context.Context, groupVersion string) (bool, error)

// kubeClient returns dc, or builds the client from in-cluster config or KUBECONFIG; a given client
// needs no config. The job reads and writes every object through the dynamic client: client-go's
// typed clientset would link every API group into the binary for the handful of kinds it touches.
// The discovery probe comes with a built client (nil with a given one).
func kubeClient(dc dynamic.Interface) (dynamic.Interface, served, error) {
	if dc != nil {
		return dc, nil, nil
	}
	rc, err := kube.RESTConfig()
	if err != nil {
		return nil, nil, err
	}
	if dc, err = dynamic.NewForConfig(rc); err != nil {
		return nil, nil, fmt.Errorf("Kubernetes client: %w", err)
	}
	return dc, kube.GroupVersionServed(rc), nil
}
