// Package ops is the litemaas-ops command line: the program, its commands in the order `help` lists
// them, and how an error becomes an exit status. Each command lives in a package of its own under
// internal/ops (check, deploy, pinimages, verify, undeploy, restore) with its options, its flags
// (NewCommand) and its work; deploy --init-overlay writes its files through initoverlay. What several of
// them need is in cluster (the connection and the questions asked of the API server), report (check
// tables, confirmation) and tree (the fork's checkout); their tests share opstest.
//
// The program stays here, above the commands, because it is the one place that knows all of them: the
// usage lists them, every command has the same shape (internal/cli), and the exit status is decided
// for all of them alike (an error with ExitCode, such as check's, decides its own; any other is 1).
package ops

import (
	"context"
	"errors"
	"io"

	"github.com/litemaas-gitops/litemaas-gitops/internal/cli"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/check"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/deploy"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/pinimages"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/restore"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/undeploy"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/verify"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = cli.ExitUsage
)

const footer = `The cluster is the one of your kubeconfig (KUBECONFIG, else ~/.kube/config), as after ` + "`oc login`" + `;
--context NAME picks another context. Paths are relative to the working directory (run from your fork).
-v logs debug details to stderr. check needs no cluster.

Exit status: 0 done, 1 failed (a check, a timeout, an error), 2 wrong usage or (check) problems found.`

// Program is the litemaas-ops command line: each command an options struct with Run(ctx, out).
func Program(stdin io.Reader, stdout, stderr io.Writer) *cli.Program {
	return &cli.Program{
		Name:    "litemaas-ops",
		Summary: "deploys, verifies, undeploys and restores LiteMaaS on OpenShift with Argo CD, and checks a fork's tree before a push.",
		Commands: []*cli.Command{
			check.NewCommand(),
			deploy.NewCommand(stdin, stderr),
			pinimages.NewCommand(),
			verify.NewCommand(stderr),
			undeploy.NewCommand(stdin, stderr),
			restore.NewCommand(),
		},
		Footer: footer,
		Code:   exitCode,
		Stdout: stdout,
		Stderr: stderr,
	}
}

// Main runs the command line args (without the program name) and returns the exit status.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return Program(stdin, stdout, stderr).Main(ctx, args)
}

// exitCoder is an error that decides its exit status.
type exitCoder interface{ ExitCode() int }

func exitCode(err error) int {
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return ExitFailed
}
