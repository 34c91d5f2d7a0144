package argocd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/litemaas-gitops/litemaas-gitops/internal/argocdtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
)

// testOverlays: every overlay under gitops/overlays/ syncs to Succeeded/Synced/Healthy, PostSync
// included. Each overlay is the whole stack in namespace litemaas, so they run one after the other:
// the app-of-apps' overlay (example, synced by the scenarios before) is deleted with its resources
// first, then each other overlay gets an Application like the shipped one and is deleted after.
func testOverlays(t *testing.T, f *fixture) {
	ctx := context.Background()
	apps := f.kube.Dynamic().Resource(argocdtest.ApplicationGVR).Namespace(argocdtest.DefaultNamespace)
	// The root Application has no resources finalizer: deleting it leaves its child, as the README says.
	require.NoError(t, apps.Delete(ctx, rootApp, metav1.DeleteOptions{}))
	rootSynced = false
	deleteWithResources(t, f, childApp)

	entries, err := os.ReadDir(filepath.Join(f.repo.Work, "gitops/overlays"))
	require.NoError(t, err)
	shipped := readObject(t, filepath.Join(f.repo.Work, "gitops/argocd/app-of-apps/step-06b-private-ai-litemaas.yaml"))
	cat, err := catalog.Load(filepath.Join(f.repo.Work, modelsFile))
	require.NoError(t, err)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		overlay := "gitops/overlays/" + e.Name()
		t.Run(e.Name(), func(t *testing.T) {
			skipWithoutOperator(t, f, overlay)
			if _, err := os.Stat(filepath.Join(f.repo.Work, overlay, "cluster")); err == nil {
				// The overlay's cluster-admin part, applied once by a cluster admin.
				cluster, err := manifests.Render(filepath.Join(f.repo.Work, overlay, "cluster"))
				require.NoError(t, err)
				f.kube.Apply(t, cluster...)
			}
			userSteps(t, f, overlay)
			head, err := f.repo.Head(ctx)
			require.NoError(t, err)
			app := shipped.DeepCopy()
			name := "overlay-" + e.Name()
			app.SetName(name)
			require.NoError(t, unstructured.SetNestedField(app.Object, overlay, "spec", "source", "path"))
			t0 := time.Now()
			f.kube.Apply(t, app)
			a, err := f.h.WaitApp(ctx, name, 3*time.Minute, func(a *argocdtest.App) bool { return a.Done(head) })
			require.NoError(t, err)
			t.Logf("%s: Succeeded/Synced/Healthy in %.1fs", overlay, time.Since(t0).Seconds())
			for _, r := range a.Status.Resources {
				if r.Hook {
					continue
				}
				assert.Equal(t, "Synced", r.Status, "%s/%s", r.Kind, r.Name)
				if r.Health != nil {
					assert.Equal(t, "Healthy", r.Health.Status, "%s/%s: %s", r.Kind, r.Name, r.Health.Message)
				}
			}
			assert.ElementsMatch(t, catalogIDs(cat), liteLLMModels(t, f), "models in LiteLLM")
			assert.ElementsMatch(t, catalogIDs(cat), dbModels(t, f), "rows in the backend's database")
			deleteWithResources(t, f, name)
		})
	}
}

// operatorGroups are API groups whose kinds Argo CD 3.6 judges by a status only their operator writes
// (its built-in health checks of CloudNativePG's Cluster, Database and Backup); the harness plays no
// such operator.
var operatorGroups = map[string]string{"postgresql.cnpg.io": "CloudNativePG"}

// skipWithoutOperator skips an overlay that needs an operator the harness does not play, naming it.
func skipWithoutOperator(t *testing.T, f *fixture, overlay string) {
	objs, err := manifests.Render(filepath.Join(f.repo.Work, overlay))
	require.NoError(t, err)
	for _, o := range objs {
		if op, ok := operatorGroups[o.GroupVersionKind().Group]; ok {
			t.Skipf("%s renders %s %s: Argo CD's health check waits for the status the %s operator writes, and the harness plays no %s operator",
				overlay, o.GetKind(), o.GetName(), op, op)
		}
	}
}

// userSteps does what an overlay's README asks of the user before the first sync: for OAUTH_MODE=oidc,
// the provider's issuer in the overlay's settings (a commit), the namespace and the Secret holding the
// client registered at the provider.
func userSteps(t *testing.T, f *fixture, overlay string) {
	objs, err := manifests.Render(filepath.Join(f.repo.Work, overlay))
	require.NoError(t, err)
	job := manifests.Find(objs, "Job", "litemaas-secrets")
	require.NotNil(t, job, "%s renders no Job litemaas-secrets", overlay)
	containers, _, _ := unstructured.NestedSlice(job.Object, "spec", "template", "spec", "containers")
	for _, c := range containers {
		env, _ := c.(map[string]any)["env"].([]any)
		for _, e := range env {
			m, _ := e.(map[string]any)
			if m["name"] != "OIDC_CLIENT_SECRET_NAME" {
				continue
			}
			name, _ := m["value"].(string)
			ctx := context.Background()
			// The issuer the copy-me overlay asks the user to set: the stand-in provider's.
			settings := filepath.Join(overlay, "settings/cluster-settings.yaml")
			b, err := os.ReadFile(filepath.Join(f.repo.Work, settings))
			require.NoError(t, err)
			if !bytes.Contains(b, []byte(f.oidc.issuer)) {
				_, err = f.repo.Commit(ctx, overlay+": the provider's issuer", func(work string) error {
					return argocdtest.EditFile(work, settings, "oidcIssuer: https://keycloak.apps.cluster.example.com/realms/litemaas", "oidcIssuer: "+f.oidc.issuer)
				})
				require.NoError(t, err)
			}
			require.NoError(t, f.h.EnsureNamespace(ctx, namespace))
			_, err = f.kube.Clientset().CoreV1().Secrets(namespace).Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
				StringData: map[string]string{"clientID": "litemaas", "clientSecret": "client-secret-registered-at-the-provider"},
			}, metav1.CreateOptions{})
			require.NoError(t, err, "creating the Secret %s the overlay's README asks for", name)
		}
	}
}

// deleteWithResources deletes Application name together with what it deployed (the
// resources-finalizer, as `argocd app delete --cascade` does), then namespace litemaas; the stand-ins
// then forget its database and LiteLLM.
func deleteWithResources(t *testing.T, f *fixture, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	apps := f.kube.Dynamic().Resource(argocdtest.ApplicationGVR).Namespace(argocdtest.DefaultNamespace)
	patch := []byte(`{"metadata":{"finalizers":["resources-finalizer.argocd.argoproj.io"]}}`)
	_, err := apps.Patch(ctx, name, "application/merge-patch+json", patch, metav1.PatchOptions{})
	require.NoError(t, err)
	require.NoError(t, apps.Delete(ctx, name, metav1.DeleteOptions{}))
	require.True(t, waitGone(ctx, kube.NamedListWatch(apps, name)), "Application %s is not deleted within 2 minutes", name)
	// The Namespace carries Delete=false (its data outlives the Application): delete it by hand, as
	// `make undeploy` does, so that the next overlay starts from an empty namespace.
	require.NoError(t, f.kube.Clientset().CoreV1().Namespaces().Delete(ctx, namespace, metav1.DeleteOptions{}))
	nsRes := f.kube.Dynamic().Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"})
	if !waitGone(ctx, kube.NamedListWatch(nsRes, namespace)) {
		ns, err := f.kube.Clientset().CoreV1().Namespaces().Get(context.Background(), namespace, metav1.GetOptions{})
		require.NoError(t, err)
		t.Fatalf("namespace %s is not deleted within 2 minutes: %+v", namespace, ns.Status)
	}
	f.svc.Forget(namespace)
}

// waitGone watches the one object lw lists until it is deleted; false when ctx ends first.
func waitGone(ctx context.Context, lw cache.ListerWatcher) bool {
	_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, func(store cache.Store) (bool, error) {
		return len(store.List()) == 0, nil
	}, func(ev watch.Event) (bool, error) { return ev.Type == watch.Deleted, nil })
	return err == nil || apierrors.IsNotFound(err)
}

// testCRDIsUpstream: gitops/test/crds holds Argo CD's Application CRD unchanged, the one Argo CD runs with.
func testCRDIsUpstream(t *testing.T, f *fixture) {
	ours, err := os.ReadFile(filepath.Join(f.root, "gitops/test/crds/applications.argoproj.io.yaml"))
	require.NoError(t, err)
	theirs, err := os.ReadFile(filepath.Join(f.h.BinDir, "manifests/crds/application-crd.yaml"))
	require.NoError(t, err)
	_, body, ok := bytes.Cut(ours, []byte("\n"))
	require.True(t, ok)
	assert.True(t, bytes.Equal(theirs, body), "gitops/test/crds/applications.argoproj.io.yaml differs from Argo CD's: run hack/argocd/update-crds.sh")
}
