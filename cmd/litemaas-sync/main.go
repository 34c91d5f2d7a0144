// Command litemaas-sync keeps LiteLLM and the LiteMaaS database in line with a models catalog. It
// runs as an Argo CD PostSync hook; see the README for its configuration and exit codes.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sethvargo/go-envconfig"

	"github.com/litemaas-gitops/litemaas-gitops/internal/job"
)

func main() {
	// SIGTERM (Kubernetes stopping the pod, Argo CD terminating the sync) cancels the context: open
	// database transactions roll back, and nothing is left half-written.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "litemaas-sync:", err)
	}
	os.Exit(job.Code(err))
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, job.Usage)
		return &job.ExitError{Code: job.ExitInvalid, Err: fmt.Errorf("no command given")}
	}
	switch args[0] {
	case "reconcile":
		o := &job.ReconcileOptions{Env: envconfig.OsLookuper(), TerminationLog: "/dev/termination-log"}
		for _, a := range args[1:] {
			switch a {
			case "--dry-run", "-dry-run":
				o.DryRun = true
			default:
				return &job.ExitError{Code: job.ExitInvalid, Err: fmt.Errorf("reconcile: unknown argument %q", a)}
			}
		}
		return o.Run(ctx, os.Stdout)
	case "secrets":
		if len(args) > 1 {
			return &job.ExitError{Code: job.ExitInvalid, Err: fmt.Errorf("secrets: unexpected argument %q (configuration is read from the environment)", args[1])}
		}
		return (&job.SecretsOptions{Env: envconfig.OsLookuper(), TerminationLog: "/dev/termination-log"}).Run(ctx, os.Stdout)
	case "validate":
		return (&job.ValidateOptions{Files: args[1:]}).Run(ctx, os.Stdout)
	case "help", "-h", "--help":
		fmt.Print(job.Usage)
		return nil
	default:
		fmt.Fprint(os.Stderr, job.Usage)
		return &job.ExitError{Code: job.ExitInvalid, Err: fmt.Errorf("unknown command %q", args[0])}
	}
}
