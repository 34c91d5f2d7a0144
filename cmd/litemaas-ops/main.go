// Command litemaas-ops deploys, verifies, undeploys and restores LiteMaaS on OpenShift with Argo CD,
// using the kubeconfig of `oc login`. The Makefile targets deploy, verify, undeploy and restore run it;
// `litemaas-ops help` lists the commands and flags.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/litemaas-gitops/litemaas-gitops/internal/ops"
)

func main() {
	// Ctrl-C stops a wait cleanly: what was applied stays applied, and the message says so.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ops.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
