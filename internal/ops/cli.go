package ops

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Usage is printed by `litemaas-ops help` and on a usage error.
const Usage = `litemaas-ops: deploy, verify, undeploy and restore LiteMaaS on OpenShift with Argo CD.

Usage:
  litemaas-ops deploy   [--overlay DIR] [--repo-url URL] [--timeout 20m] [--yes]
                        [--init-overlay NAME [--domain APPS_DOMAIN]]
  litemaas-ops verify   [--namespace litemaas] [--catalog gitops/base/models.yaml] [--skip-routes] [--insecure] [--chat]
  litemaas-ops undeploy [--yes] [--cluster] [--overlay DIR] [--wait 3m]
  litemaas-ops restore  --from DUMP_DIR --to-url postgresql://USER[:PASSWORD]@HOST:PORT/postgres [--force] [--pg-restore PATH]

The cluster is the one of your kubeconfig (KUBECONFIG, else ~/.kube/config), as after ` + "`oc login`" + `;
--context NAME picks another context. Paths are relative to the working directory (run from your fork).
-v logs debug details to stderr.

Exit status: 0 done, 1 failed (a check, a timeout, an error), 2 wrong usage.
`

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// usageError is a command line mistake (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// Main runs the command line args (without the program name) and returns the exit status.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := run(ctx, args, stdin, stdout, stderr)
	var ue usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "litemaas-ops: %v\n\n%s", err, Usage)
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "litemaas-ops: %v\n", err)
		return ExitFailed
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"no command given"}
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("litemaas-ops "+cmd, flag.ContinueOnError)
	// Errors and the usage text are printed once, by Main.
	fs.SetOutput(io.Discard)
	kubeContext := fs.String("context", "", "kubeconfig context (default: the current one)")
	verbose := fs.Bool("v", false, "log debug details to stderr")
	parse := func() error {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, Usage)
				return err
			}
			return usageError{err.Error()}
		}
		if fs.NArg() > 0 {
			return usageError{fmt.Sprintf("%s: unexpected argument %q", cmd, fs.Arg(0))}
		}
		return nil
	}
	logger := func() *slog.Logger {
		level := slog.LevelInfo
		if *verbose {
			level = slog.LevelDebug
		}
		return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	}
	cluster := func() (*Cluster, error) { return LoadCluster(*kubeContext, logger()) }
	root := func() (string, error) {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		return FindRoot(wd)
	}

	switch cmd {
	case "deploy":
		var o DeployOptions
		fs.StringVar(&o.Overlay, "overlay", DefaultOverlay, "overlay Argo CD syncs (a directory under gitops/overlays)")
		fs.StringVar(&o.RepoURL, "repo-url", "", "your fork's URL for the Applications (default: the repoURL in gitops/argocd)")
		fs.DurationVar(&o.Timeout, "timeout", 20*time.Minute, "how long to wait for Argo CD to sync and the PostSync job to succeed")
		fs.BoolVar(&o.Yes, "yes", false, "do not ask for confirmation")
		fs.StringVar(&o.InitOverlay, "init-overlay", "", "create gitops/overlays/NAME for this cluster's apps domain, then stop")
		fs.StringVar(&o.Domain, "domain", "", "apps domain for --init-overlay when the cluster does not publish one")
		if err := parse(); err != nil {
			return err
		}
		r, err := root()
		if err != nil {
			return err
		}
		c, err := cluster()
		if err != nil {
			return err
		}
		o.Root, o.In, o.Out, o.Overlay = r, stdin, stdout, inRepo(r, o.Overlay)
		return Deploy(ctx, c, o)

	case "verify":
		var o VerifyOptions
		fs.StringVar(&o.Namespace, "namespace", DefaultNamespace, "namespace LiteMaaS runs in")
		fs.StringVar(&o.Catalog, "catalog", DefaultCatalog, "models catalog to compare the published models with")
		fs.BoolVar(&o.SkipRoutes, "skip-routes", false, "do not send requests to the Routes (e.g. from outside the cluster's network)")
		fs.BoolVar(&o.Insecure, "insecure", false, "do not verify the Routes' TLS certificates (self-signed router certificate)")
		fs.BoolVar(&o.Chat, "chat", false, "also send one chat completion per served catalog model through the LiteLLM route, with a temporary virtual key")
		if err := parse(); err != nil {
			return err
		}
		c, err := cluster()
		if err != nil {
			return err
		}
		if r, err := root(); err == nil {
			o.Catalog = inRepo(r, o.Catalog)
		}
		o.Out = stdout
		return Verify(ctx, c, o)

	case "undeploy":
		var o UndeployOptions
		fs.BoolVar(&o.Yes, "yes", false, "do not ask for confirmation")
		fs.BoolVar(&o.Cluster, "cluster", false, "also remove the cluster-admin part (OAuthClient, Groups)")
		fs.StringVar(&o.Overlay, "overlay", DefaultOverlay, "overlay whose cluster-admin part --cluster removes")
		fs.DurationVar(&o.Wait, "wait", 3*time.Minute, "how long to wait for each deletion to finish")
		if err := parse(); err != nil {
			return err
		}
		r, err := root()
		if err != nil {
			return err
		}
		c, err := cluster()
		if err != nil {
			return err
		}
		o.Root, o.In, o.Out, o.Overlay = r, stdin, stdout, inRepo(r, o.Overlay)
		return Undeploy(ctx, c, o)

	case "restore":
		var o RestoreOptions
		fs.StringVar(&o.From, "from", "", "backup directory (or the backup volume's root: its newest backup)")
		fs.StringVar(&o.ToURL, "to-url", "", "PostgreSQL server, postgresql://USER[:PASSWORD]@HOST:PORT/postgres (password also from PGPASSWORD)")
		fs.BoolVar(&o.Force, "force", false, "drop and recreate databases that are not empty")
		fs.StringVar(&o.PgRestore, "pg-restore", "", "pg_restore binary (default: the newest found)")
		if err := parse(); err != nil {
			return err
		}
		if o.From == "" || o.ToURL == "" {
			return usageError{"restore needs --from and --to-url"}
		}
		o.Out = stdout
		_, err := Restore(ctx, o)
		return err

	case "help", "-h", "--help":
		fmt.Fprint(stdout, Usage)
		return nil
	default:
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

// inRepo resolves a path given on the command line: as given when it exists (absolute, or relative to the
// working directory), else relative to the repository root, so that the defaults also work from a
// subdirectory of the checkout.
func inRepo(root, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if _, err := os.Stat(filepath.Join(root, p)); err == nil {
		return filepath.Join(root, p)
	}
	return p
}
