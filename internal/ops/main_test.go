package ops

import (
	"os"
	"testing"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/opstest"
)

// srv is one real kube-apiserver for the package, which the command line reaches through a kubeconfig.
var srv *kapitest.Server

func TestMain(m *testing.M) {
	srv = kapitest.MustStart(m)
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

// The shared fixtures, under the names the tests use.
const (
	testDomain = opstest.Domain
	goodModels = opstest.GoodModels
)

var (
	repoCopy = opstest.RepoCopy
	squeeze  = opstest.Squeeze
)

func setupCluster(t *testing.T) { t.Helper(); opstest.SetupCluster(t, srv) }

func populateNamespace(t *testing.T, ns, domain string) {
	t.Helper()
	opstest.PopulateNamespace(t, srv, ns, domain)
}

func writeJobStatus(t *testing.T, ns, result, modelsJSON string) {
	t.Helper()
	opstest.WriteJobStatus(t, srv, ns, result, modelsJSON)
}
