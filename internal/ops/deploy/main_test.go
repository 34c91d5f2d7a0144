package deploy

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/opstest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/verify"
)

// srv is one real kube-apiserver for the package. Tests that need the fixed names of the tree
// (openshift-gitops, litemaas, the cluster-scoped objects) run in TestLifecycle, in order; the others
// work in namespaces of their own.
var srv *kapitest.Server

func TestMain(m *testing.M) {
	srv = kapitest.MustStart(m)
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

// The shared fixtures (internal/ops/opstest), under the names the tests use.
const (
	testDomain  = opstest.Domain
	testRepoURL = opstest.RepoURL
	goodModels  = opstest.GoodModels
)

type syncBuffer = opstest.SyncBuffer

var (
	repoCopy   = opstest.RepoCopy
	repoRoot   = opstest.RepoRoot
	newCluster = opstest.NewCluster
	squeeze    = opstest.Squeeze
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

func ingressObject(domain string) *unstructured.Unstructured { return opstest.IngressObject(domain) }

// newRouteServer serves the Routes under domains over HTTPS, reached with the client verify builds.
func newRouteServer(t *testing.T, domains ...string) *opstest.RouteServer {
	t.Helper()
	return opstest.NewRouteServer(t, verify.RouteClient(false), domains...)
}

var (
	gvrApplication = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}
	gvrIngress     = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "ingresses"}
	gvrOAuthClient = schema.GroupVersionResource{Group: "oauth.openshift.io", Version: "v1", Resource: "oauthclients"}
	gvrGroup       = schema.GroupVersionResource{Group: "user.openshift.io", Version: "v1", Resource: "groups"}
)

// argoFinalizer is Argo CD's resources finalizer, as the simulated controller knows it.
const argoFinalizer = "resources-finalizer.argocd.argoproj.io"

// --- a simulated Argo CD -----------------------------------------------------------------------------

// argoSim plays the openshift-gitops application controller for one Application: it refreshes it, syncs
// it through the states a real first sync goes through (creating what the sync would create: namespace,
// Routes, pods, the job's status ConfigMap), answers later refresh requests, and removes the
// resources-finalizer when the Application is deleted (as after pruning).
type argoSim struct {
	t                   *testing.T
	namespace, name     string
	destNS              string
	models              string // models.json the simulated job publishes
	step                int
	stepEvery           time.Duration
	pruneDelay          time.Duration
	populateDestination bool

	mu           sync.Mutex
	deleteSeenAt time.Time // when the sim first saw the Application being deleted
}

// sawDeletion reports whether the Application was deleted while it carried Argo CD's finalizer.
func (s *argoSim) sawDeletion() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.deleteSeenAt.IsZero()
}

func (s *argoSim) run(ctx context.Context) {
	tick := time.NewTicker(s.stepEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := s.tick(ctx); err != nil && ctx.Err() == nil {
			s.t.Logf("argo sim: %v", err)
		}
	}
}

func (s *argoSim) tick(ctx context.Context) error {
	apps := srv.Dynamic().Resource(gvrApplication).Namespace(s.namespace)
	app, err := apps.Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if app.GetDeletionTimestamp() != nil {
		s.mu.Lock()
		if s.deleteSeenAt.IsZero() && slices.Contains(app.GetFinalizers(), argoFinalizer) {
			s.deleteSeenAt = time.Now()
		}
		seen := s.deleteSeenAt
		s.mu.Unlock()
		if !seen.IsZero() && time.Since(seen) >= s.pruneDelay && len(app.GetFinalizers()) > 0 {
			return s.patch(ctx, map[string]any{"metadata": map[string]any{"finalizers": nil}})
		}
		return nil
	}
	_, refreshing := app.GetAnnotations()[refreshAnnotation]
	source, _, _ := unstructured.NestedMap(app.Object, "spec", "source")
	destination, _, _ := unstructured.NestedMap(app.Object, "spec", "destination")
	clearRefresh := map[string]any{"annotations": map[string]any{refreshAnnotation: nil}}
	now := time.Now().UTC().Format(time.RFC3339)
	switch s.step {
	case 0:
		s.step++
		return s.patch(ctx, map[string]any{"metadata": clearRefresh, "status": map[string]any{
			"sync":   map[string]any{"status": "OutOfSync", "comparedTo": map[string]any{"source": source, "destination": destination}},
			"health": map[string]any{"status": "Missing"},
			"operationState": map[string]any{
				// Argo CD's CRD requires the operation and its start.
				"operation": map[string]any{"sync": map[string]any{}},
				"phase":     "Running", "message": "one or more tasks are running", "startedAt": now,
			},
		}})
	case 1:
		s.step++
		if s.populateDestination {
			s.createDestination(ctx)
		}
		return s.patch(ctx, map[string]any{"status": map[string]any{
			"sync":   map[string]any{"status": "Synced", "revision": "0123456789abcdef0123", "comparedTo": map[string]any{"source": source, "destination": destination}},
			"health": map[string]any{"status": "Progressing"},
			"resources": []any{
				map[string]any{"kind": "Deployment", "name": "backend", "health": map[string]any{"status": "Progressing"}},
				map[string]any{"kind": "Deployment", "name": "frontend", "health": map[string]any{"status": "Healthy"}},
			},
			"operationState": map[string]any{
				"phase": "Running", "message": "waiting for healthy state of apps/Deployment/backend", "startedAt": now,
			},
		}})
	case 2:
		s.step++
		return s.patch(ctx, map[string]any{"status": map[string]any{
			"health":    map[string]any{"status": "Healthy"},
			"resources": []any{},
			"operationState": map[string]any{
				"phase": "Running", "message": "waiting for completion of hook batch/Job/litemaas-sync",
				"syncResult": map[string]any{"revision": "0123456789abcdef0123", "resources": []any{map[string]any{
					"group": "batch", "version": "v1", "namespace": "litemaas",
					"kind": "Job", "name": "litemaas-sync", "hookType": "PostSync", "hookPhase": "Running", "message": "Pod is running",
				}}},
			},
		}})
	case 3:
		s.step++
		if s.populateDestination {
			s.writeJobStatus(ctx)
		}
		return s.patch(ctx, map[string]any{"status": map[string]any{
			"operationState": map[string]any{
				"phase": "Succeeded", "message": "successfully synced (all tasks run)",
				"syncResult": map[string]any{"revision": "0123456789abcdef0123", "resources": []any{map[string]any{
					"group": "batch", "version": "v1", "namespace": "litemaas",
					"kind": "Job", "name": "litemaas-sync", "hookType": "PostSync", "hookPhase": "Succeeded", "message": "Reached expected number of succeeded pods",
				}}},
			},
		}})
	default:
		// Synced: later deploys only ask for a refresh, which finds nothing new.
		if refreshing {
			return s.patch(ctx, map[string]any{"metadata": clearRefresh})
		}
	}
	return nil
}

func (s *argoSim) patch(ctx context.Context, p map[string]any) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = srv.Dynamic().Resource(gvrApplication).Namespace(s.namespace).Patch(ctx, s.name, types.MergePatchType, data, metav1.PatchOptions{FieldManager: "argocd-application-controller"})
	return err
}

// createDestination creates what the sync of the overlay creates and verify looks at: the namespace,
// Routes with the overlay's hosts, and Ready pods.
func (s *argoSim) createDestination(ctx context.Context) {
	t := s.t
	cs := srv.Clientset()
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   s.destNS,
		Labels: map[string]string{tree.LabelPartOf: tree.PartOf, "argocd.argoproj.io/managed-by": "openshift-gitops"},
	}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Errorf("argo sim: creating namespace: %v", err)
		return
	}
	populateNamespace(t, s.destNS, testDomain)
}

func (s *argoSim) writeJobStatus(ctx context.Context) {
	writeJobStatus(s.t, s.destNS, "succeeded", s.models)
}
