package argocd

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/litemaas-gitops/litemaas-gitops/internal/argocdtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
)

const (
	hookAnnotation   = "argocd.argoproj.io/hook"
	deleteAnnotation = "argocd.argoproj.io/hook-delete-policy"
	modelsFile       = "gitops/base/models.yaml"
)

// TestArgoCD runs the scenarios in order on one Argo CD: each starts from what the previous one left,
// so the first failure stops the rest.
func TestArgoCD(t *testing.T) {
	t.Parallel()
	f := setup(t)
	steps := []struct {
		name string
		run  func(t *testing.T, f *fixture)
	}{
		{"first sync of the root app-of-apps from an empty cluster", testFirstSync},
		{"quiet with selfHeal on", testQuiet},
		{"self-heal of a hand-edited Deployment", testSelfHeal},
		{"a commit editing models.yaml", testCatalogEdit},
		{"a commit breaking the catalog", testBrokenCatalog},
		{"self-heal of a hand-made LiteLLM deployment", testLiteLLMSelfHeal},
		{"a commit removing a model with PRUNE on", testPrune},
		{"a failed drift run, then a commit", testFailedDrift},
		{"the Application CRD of gitops/test/crds is Argo CD's", testCRDIsUpstream},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) { s.run(t, f) }) {
			t.Logf("%s", f.diagnostics())
			t.FailNow()
		}
	}
}

// ensureSynced deploys the root app-of-apps as the first-sync scenario does, when it is not.
func ensureSynced(tb testing.TB, f *fixture) {
	tb.Helper()
	if f.rootSynced {
		return
	}
	ctx := context.Background()
	head, err := f.repo.Head(ctx)
	require.NoError(tb, err)
	cluster, err := manifests.Render(filepath.Join(f.repo.Work, "gitops/overlays/example/cluster"))
	require.NoError(tb, err)
	f.kube.Apply(tb, cluster...)
	f.kube.Apply(tb, readObject(tb, filepath.Join(f.repo.Work, "gitops/argocd/root-app.yaml")))
	_, err = f.h.WaitApp(ctx, childApp, 3*time.Minute, func(a *argocdtest.App) bool { return a.Done(head) })
	require.NoError(tb, err)
	f.rootSynced = true
}

func testFirstSync(t *testing.T, f *fixture) {
	ctx := context.Background()
	head, err := f.repo.Head(ctx)
	require.NoError(t, err)

	// As a cluster admin does once (README): the cluster part, then the root Application.
	cluster, err := manifests.Render(filepath.Join(f.repo.Work, "gitops/overlays/example/cluster"))
	require.NoError(t, err)
	f.kube.Apply(t, cluster...)
	root := readObject(t, filepath.Join(f.repo.Work, "gitops/argocd/root-app.yaml"))
	require.Equal(t, f.repo.URL, nested(root, "spec", "source", "repoURL"), "the repository under test serves the root Application")

	t0 := time.Now()
	f.kube.Apply(t, root)
	child, err := f.h.WaitApp(ctx, childApp, 3*time.Minute, func(a *argocdtest.App) bool { return a.Done(head) })
	require.NoError(t, err)
	_, err = f.h.WaitApp(ctx, rootApp, time.Minute, func(a *argocdtest.App) bool { return a.Done(head) })
	require.NoError(t, err)
	took := time.Since(t0)
	f.rootSynced = true
	events := f.rec.since(t0)
	t.Logf("first sync of %s from an empty cluster: Succeeded/Synced/Healthy after %.1fs\n%s", rootApp, took.Seconds(),
		timeline(filterNoise(events), t0, namespace, argocdtest.DefaultNamespace))

	t.Run("order", func(t *testing.T) {
		at := func(kind, name, state string) time.Time {
			e, ok := first(events, kind, name, state)
			require.True(t, ok, "no %s %s %q in the timeline", kind, name, state)
			return e.T
		}
		ns := at("Namespace", namespace, "")
		hookRBAC := at("Role", "litemaas-secrets", "created")
		secretsJob := at("Job", "litemaas-secrets", "created")
		secretsDone := at("Job", "litemaas-secrets", "Complete")
		secrets := at("Secret", "backend-secret", "created")
		var syncPhase, ready, admitted time.Time
		for _, w := range []struct{ kind, name string }{
			{"StatefulSet", "postgres"}, {"Deployment", "litellm"}, {"Deployment", "backend"}, {"Deployment", "frontend"},
		} {
			if c := at(w.kind, w.name, ""); syncPhase.IsZero() || c.Before(syncPhase) {
				syncPhase = c
			}
			if r := at(w.kind, w.name, "ready"); r.After(ready) {
				ready = r
			}
		}
		for _, r := range []string{"litellm", "litemaas"} {
			if a := at("Route", r, "admitted"); a.After(admitted) {
				admitted = a
			}
		}
		postSync := at("Job", "litemaas-sync", "")
		postSyncDone := at("Job", "litemaas-sync", "Complete")
		done := at("Application", childApp, "Succeeded/Synced/Healthy")

		assert.False(t, hookRBAC.Before(ns), "the hook RBAC (wave -2) comes after the Namespace")
		assert.False(t, secretsJob.Before(hookRBAC), "the secrets Job (wave -1) comes after its RBAC (wave -2)")
		assert.True(t, secrets.Before(syncPhase), "the Secrets exist before the Sync phase starts")
		assert.True(t, secretsDone.Before(syncPhase), "PreSync completes before the Sync phase starts")
		assert.True(t, ready.Before(postSync), "every workload is ready before the PostSync hook starts")
		assert.True(t, admitted.Before(postSync), "both Routes are admitted before the PostSync hook starts")
		assert.True(t, postSyncDone.Before(done), "the Application is Succeeded only after the PostSync hook")
	})

	t.Run("Secrets", func(t *testing.T) {
		want := map[string][]string{
			"postgres-secret": {"POSTGRES_USER", "POSTGRES_PASSWORD"},
			"litellm-secret":  {"LITELLM_MASTER_KEY", "LITELLM_SALT_KEY", "DATABASE_URL"},
			"backend-secret":  {"DATABASE_URL", "JWT_SECRET", "OAUTH_CLIENT_SECRET", "ADMIN_API_KEYS", "LITELLM_API_KEY"},
		}
		for name, keys := range want {
			sec, err := f.kube.Clientset().CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
			require.NoError(t, err, name)
			for _, k := range keys {
				assert.NotEmpty(t, sec.Data[k], "%s/%s", name, k)
			}
			assert.Equal(t, "IgnoreExtraneous", sec.Annotations["argocd.argoproj.io/compare-options"], name)
			assert.Equal(t, "Prune=false", sec.Annotations["argocd.argoproj.io/sync-options"], name)
		}
	})

	t.Run("models in LiteLLM and in PostgreSQL", func(t *testing.T) {
		cat, err := catalog.Load(filepath.Join(f.repo.Work, modelsFile))
		require.NoError(t, err)
		require.Len(t, cat.Models, 5, "the shipped catalog")
		assert.ElementsMatch(t, catalogIDs(cat), liteLLMModels(t, f), "models in the LiteLLM double")
		assert.ElementsMatch(t, catalogIDs(cat), dbModels(t, f), "rows of models in the backend's database")
	})

	t.Run("hooks left as their delete policies say", func(t *testing.T) {
		objs, err := manifests.Render(filepath.Join(f.repo.Work, "gitops/overlays/example"))
		require.NoError(t, err)
		mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(f.kube.Clientset().Discovery()))
		hooks := 0
		for _, o := range objs {
			if o.GetAnnotations()[hookAnnotation] == "" {
				continue
			}
			hooks++
			policy := o.GetAnnotations()[deleteAnnotation]
			if policy == "" {
				policy = "BeforeHookCreation" // Argo CD's default
			}
			gvk := o.GroupVersionKind()
			m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			require.NoError(t, err)
			_, err = f.kube.Dynamic().Resource(m.Resource).Namespace(namespace).Get(ctx, o.GetName(), metav1.GetOptions{})
			if strings.Contains(policy, "HookSucceeded") {
				assert.Error(t, err, "%s %s (policy %s) is deleted after it succeeded", gvk.Kind, o.GetName(), policy)
			} else {
				assert.NoError(t, err, "%s %s (policy %s) stays until the next sync", gvk.Kind, o.GetName(), policy)
			}
		}
		assert.NotZero(t, hooks)
	})

	t.Run("each hook ran once, as the project's binary", func(t *testing.T) {
		var got []string
		for _, r := range hookRuns(f.h.Kubelet.Runs()) {
			got = append(got, r.Job+" "+strings.Join(r.Args, " "))
			assert.Zero(t, r.ExitCode, "%s: %s", r.Job, r.Output)
		}
		assert.Equal(t, []string{"litemaas-secrets secrets", "litemaas-sync reconcile"}, got)
	})

	t.Run("every resource Synced and Healthy, none to prune", func(t *testing.T) {
		for _, r := range child.Status.Resources {
			if r.Hook {
				continue // listed while they exist, never compared
			}
			assert.Equal(t, "Synced", r.Status, "%s/%s", r.Kind, r.Name)
			if r.Health != nil {
				assert.Equal(t, "Healthy", r.Health.Status, "%s/%s: %s", r.Kind, r.Name, r.Health.Message)
			}
			assert.False(t, r.RequiresPruning, "%s/%s", r.Kind, r.Name)
		}
		assert.Empty(t, child.Status.Conditions)
	})
}

// filterNoise drops the pods' and objects' churn a timeline reader does not need.
func filterNoise(events []event) []event {
	var out []event
	for _, e := range events {
		switch {
		case e.Kind == "ConfigMap" && (e.Name == "kube-root-ca.crt"),
			e.Kind == "ServiceAccount" && e.Name == "default",
			e.Kind == "Pod" && e.State == "created":
			continue
		}
		out = append(out, e)
	}
	return out
}

func catalogIDs(c *catalog.Catalog) []string {
	var ids []string
	for _, m := range c.Models {
		ids = append(ids, m.ID)
	}
	sort.Strings(ids)
	return ids
}

func liteLLMModels(t *testing.T, f *fixture) []string {
	t.Helper()
	p := f.svc.LiteLLM(namespace)
	require.NotNil(t, p, "the litellm pod never started")
	var names []string
	for _, d := range p.Deployments() {
		names = append(names, d.ModelName)
	}
	sort.Strings(names)
	return names
}

func dbModels(t *testing.T, f *fixture) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.svc.DatabaseURL(namespace, "litemaas_db"))
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id FROM models ORDER BY id`)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return ids
}

func readObject(t testing.TB, path string) *unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, yaml.Unmarshal(b, &m), path)
	return &unstructured.Unstructured{Object: m}
}

func nested(u *unstructured.Unstructured, fields ...string) string {
	s, _, _ := unstructured.NestedString(u.Object, fields...)
	return s
}

// TestOverlays runs every overlay and cluster folder (testOverlays) on an Argo CD, a cluster and a
// PostgreSQL of its own, next to TestArgoCD: both spend most of their time waiting for Argo CD's
// comparisons, quiet periods and CronJob ticks, so together they take the time of the longer one.
func TestOverlays(t *testing.T) {
	t.Parallel()
	f := setupOverlays(t)
	if !t.Run("every overlay syncs to Healthy", func(t *testing.T) { testOverlays(t, f) }) {
		t.Logf("%s", f.diagnostics())
	}
}
