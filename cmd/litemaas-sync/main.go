// Command litemaas-sync keeps LiteLLM and the LiteMaaS database in line with a models catalog. It
// runs as an Argo CD PostSync hook; see docs/configuration.md for its settings and docs/troubleshooting.md for its exit codes.
package main

import (
	"context"
	"os"

	"github.com/sethvargo/go-envconfig"

	"github.com/litemaas-gitops/litemaas-gitops/internal/cli"
	"github.com/litemaas-gitops/litemaas-gitops/internal/job"
)

func main() {
	// SIGTERM (Kubernetes stopping the pod, Argo CD terminating the sync) cancels the context: open
	// database transactions roll back, and nothing is left half-written. A second signal exits at once.
	ctx, stop := cli.NotifyContext(context.Background(), "litemaas-sync", os.Stderr)
	code := job.Program(envconfig.OsLookuper(), os.Stdout, os.Stderr).Main(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
