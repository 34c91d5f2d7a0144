package ops

import (
	"context"
	"errors"
	"flag"
	"io"
	"time"

	"github.com/litemaas-gitops/litemaas-gitops/internal/cli"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/check"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/cluster"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/pinimages"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/restore"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
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
			{
				Name: "deploy", Args: "[--overlay DIR] [--repo-url URL] [--timeout 20m] [--yes] [--init-overlay NAME [--domain APPS_DOMAIN] [--job-image REF] [--revision BRANCH|TAG]]",
				Summary: "preflight, apply, wait for sync + health + PostSync job, print the URLs",
				Help: "With --init-overlay NAME, creates gitops/overlays/NAME for the cluster's apps domain and stops; with\n" +
					"--domain too, it needs no cluster. It asks for the job image the hook Jobs run (or takes --job-image), the fork (--repo-url) and the\n" +
					"branch or tag Argo CD syncs (--revision; never HEAD), and writes the last two into gitops/argocd.",
				New: func(fs *flag.FlagSet) cli.Runner {
					c := &DeployCommand{Connection: cluster.Connection{Log: stderr}}
					c.In = stdin
					fs.StringVar(&c.Overlay, "overlay", tree.DefaultOverlay, "overlay Argo CD syncs (a directory under gitops/overlays)")
					fs.StringVar(&c.RepoURL, "repo-url", "", "your fork's URL for the Applications (default: the repoURL in gitops/argocd)")
					fs.DurationVar(&c.Timeout, "timeout", 20*time.Minute, "how long to wait for Argo CD to sync and the PostSync job to succeed")
					fs.BoolVar(&c.Yes, "yes", false, "do not ask for confirmation")
					fs.StringVar(&c.InitOverlay, "init-overlay", "", "create gitops/overlays/NAME for this cluster's apps domain, then stop")
					fs.StringVar(&c.Domain, "domain", "", "apps domain for --init-overlay (then no cluster is needed)")
					fs.StringVar(&c.JobImage, "job-image", "", "job image for --init-overlay's overlay, as `make image-push` printed it (default: ask)")
					fs.StringVar(&c.Revision, "revision", "", "branch or tag Argo CD syncs, written by --init-overlay into gitops/argocd (default: ask)")
					c.Connection.Bind(fs)
					return c
				},
			},
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

// DeployCommand is `litemaas-ops deploy`.
type DeployCommand struct {
	DeployOptions
	cluster.Connection
}

// Run deploys; with InitOverlay and Domain it only creates the overlay, without a cluster.
func (c *DeployCommand) Run(ctx context.Context, out io.Writer) error {
	root, err := tree.WorkRoot()
	if err != nil {
		return err
	}
	o := c.DeployOptions
	if o.JobImage != "" && o.InitOverlay == "" {
		return cli.Usagef("--job-image goes with --init-overlay; for an existing overlay, set the job image in its images: entry (kustomization.yaml) and push")
	}
	if o.Revision != "" && o.InitOverlay == "" {
		return cli.Usagef("--revision goes with --init-overlay; for an existing setup, set targetRevision in gitops/argocd and push")
	}
	o.Root, o.Out, o.Overlay = root, out, tree.InRepo(root, o.Overlay)
	if o.InitOverlay != "" && o.Domain != "" {
		return runInitOverlay(ctx, nil, o, &deployment{domain: o.Domain}, nil)
	}
	cl, err := c.Connect()
	if err != nil {
		return err
	}
	return Deploy(ctx, cl, o)
}
