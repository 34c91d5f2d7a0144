package verify

import (
	"os"
	"testing"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/opstest"
)

// srv is one real kube-apiserver for the package; every test works in namespaces of its own.
var srv *kapitest.Server

func TestMain(m *testing.M) {
	srv = kapitest.MustStart(m)
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

// The shared fixtures (internal/ops/opstest), under the names the tests use.
const (
	testDomain = opstest.Domain
	goodModels = opstest.GoodModels
)

type syncBuffer = opstest.SyncBuffer

var (
	newCluster    = opstest.NewCluster
	squeeze       = opstest.Squeeze
	bypassStandIn = opstest.BypassStandIn
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

func createPod(t *testing.T, ns, name, component string, ready bool) {
	t.Helper()
	opstest.CreatePod(t, srv, ns, name, component, ready)
}

// newRouteServer serves the Routes under domains over HTTPS, reached with the client verify builds.
func newRouteServer(t *testing.T, domains ...string) *opstest.RouteServer {
	t.Helper()
	return opstest.NewRouteServer(t, RouteClient(false), domains...)
}
