package openshifttest_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/dynamic"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/pgtest"
)

var (
	kube *kapitest.Server
	pg   *pgtest.Server
)

func TestMain(m *testing.M) {
	kube = kapitest.MustStart(m)
	pg = pgtest.MustStart(m)
	code := m.Run()
	_ = pg.Stop()
	kube.Stop()
	os.Exit(code)
}

// start runs a stand-in for the test's duration.
func start(t *testing.T, run func(ctx context.Context, wg *sync.WaitGroup) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	require.NoError(t, run(ctx, &wg))
}

// eventually polls get until ok returns true, failing after 30 s with the last object.
func eventually[T any](t *testing.T, what string, get func() (T, error), ok func(T) bool) T {
	t.Helper()
	var last T
	var lastErr error
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		last, lastErr = get()
		if lastErr == nil && ok(last) {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within 30s (last: %+v, error: %v)", what, last, lastErr)
	return last
}

func getObj(dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, name string) func() (*unstructured.Unstructured, error) {
	return func() (*unstructured.Unstructured, error) {
		return dyn.Resource(gvr).Namespace(ns).Get(context.Background(), name, metav1GetOptions)
	}
}

func randSuffix() string { return utilrand.String(5) }

func fmtSscan(s string, v *int64) (int, error) { return fmt.Sscanf(s, "%d/", v) }
