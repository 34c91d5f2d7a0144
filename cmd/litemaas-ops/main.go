// Command litemaas-ops deploys, verifies, undeploys and restores LiteMaaS on OpenShift with Argo CD,
// using the kubeconfig of `oc login`, and checks a fork's tree offline before a push. The Makefile
// targets check, deploy, verify, undeploy and restore run it; `litemaas-ops help` lists the commands.
package main

import (
	"context"
	"os"

	"github.com/litemaas-gitops/litemaas-gitops/internal/cli"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops"
)

func main() {
	// Ctrl-C stops a wait cleanly: what was applied stays applied, and the message says so. A second
	// Ctrl-C exits at once.
	ctx, stop := cli.NotifyContext(context.Background(), "litemaas-ops", os.Stderr)
	code := ops.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
