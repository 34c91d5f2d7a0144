package argocd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/litemaas-gitops/litemaas-gitops/internal/argocdtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/openshifttest"
)

// testOverlays: every overlay under gitops/overlays/ and every cluster folder under gitops/clusters/
// syncs to Succeeded/Synced/Healthy, PostSync included, with the OpenShift stand-ins on. Each is the
// whole stack in namespace litemaas, so they run one after the other: the app-of-apps' overlay
// (example, synced by the scenarios before) is deleted with its resources first, then each other
// overlay gets an Application like the shipped one and is deleted after. The production profile meets
// OLM (its Subscription, the InstallPlan a person approves) and the CloudNativePG stand-in; the
// overlays of quietPeriods stay quiet after their sync.
func testOverlays(t *testing.T, f *fixture) {
	ctx := context.Background()
	apps := f.kube.Dynamic().Resource(argocdtest.ApplicationGVR).Namespace(argocdtest.DefaultNamespace)
	// The root Application has no resources finalizer: deleting it leaves its child, as the README says.
	// (Both are missing when this scenario runs alone, with -run.)
	if err := apps.Delete(ctx, rootApp, metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
		require.NoError(t, err)
	}
	f.rootSynced = false
	if _, err := apps.Get(ctx, childApp, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		deleteWithResources(t, f, childApp)
	}

	var folders []string
	for _, parent := range []string{"gitops/overlays", "gitops/clusters"} {
		entries, err := os.ReadDir(filepath.Join(f.repo.Work, parent))
		require.NoError(t, err)
		for _, e := range entries {
			if e.IsDir() {
				folders = append(folders, parent+"/"+e.Name())
			}
		}
	}
	shipped := readObject(t, filepath.Join(f.repo.Work, "gitops/argocd/app-of-apps/step-06b-private-ai-litemaas.yaml"))
	cat, err := catalog.Load(filepath.Join(f.repo.Work, modelsFile))
	require.NoError(t, err)
	for _, overlay := range folders {
		t.Run(strings.TrimPrefix(overlay, "gitops/"), func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(f.repo.Work, overlay, "cluster")); err == nil {
				// The overlay's cluster-admin part, applied once by a cluster admin.
				cluster, err := manifests.Render(filepath.Join(f.repo.Work, overlay, "cluster"))
				require.NoError(t, err)
				f.kube.Apply(t, cluster...)
				approveOperators(t, f, cluster)
			}
			userSteps(t, f, overlay)
			head, err := f.repo.Head(ctx)
			require.NoError(t, err)
			app := shipped.DeepCopy()
			name := "overlay-" + filepath.Base(overlay)
			if strings.HasPrefix(overlay, "gitops/clusters/") {
				name = "cluster-" + filepath.Base(overlay)
			}
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
			checkOpenShift(t, f, overlay, a)
			if period, ok := quietPeriods[overlay]; ok {
				seen := quietApp(t, f, name, period)
				t.Logf("%s: quiet for %s after the sync: Synced/Healthy throughout, %d comparisons, no sync, no hook run", overlay, period, seen)
			}
			deleteWithResources(t, f, name)
		})
	}
}

// quietPeriods: how long an overlay must stay quiet after its sync. The production profile and the
// fleet's cluster folders get the full two minutes (eight periodic comparisons at appResync 15 s, plus a
// refresh every 5 s); the pull-secret overlay gets a shorter period with the same refreshes, enough
// comparisons to see a difference with the dockercfg controller without adding minutes to the package.
var quietPeriods = map[string]time.Duration{
	"gitops/overlays/example-ha":           2 * time.Minute,
	"gitops/clusters/prod-east":            2 * time.Minute,
	"gitops/clusters/in-cluster":           2 * time.Minute,
	"gitops/overlays/example-with-options": 30 * time.Second,
}

// quietApp watches Application name for period: it must stay Synced/Healthy with no new operation and
// no hook run while Argo CD compares it with git (periodically, and on a refresh every 5 s). It
// returns the number of comparisons seen.
func quietApp(t *testing.T, f *fixture, name string, period time.Duration) int {
	t.Helper()
	ctx := context.Background()
	before, err := f.h.App(ctx, name)
	require.NoError(t, err)
	require.True(t, before.Done(""), before.String())
	started := *before.Status.OperationState.StartedAt
	runs := len(f.h.Kubelet.Runs())
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = f.h.Refresh(ctx, name)
			}
		}
	}()
	var seen int
	var last time.Time
	changed, err := f.h.WaitApp(ctx, name, period, func(a *argocdtest.App) bool {
		if a.Status.ReconciledAt != nil && a.Status.ReconciledAt.After(last) {
			last = *a.Status.ReconciledAt
			seen++
		}
		op := a.Status.OperationState
		return a.Status.Sync.Status != "Synced" || a.Status.Health.Status != "Healthy" || op == nil || op.StartedAt == nil || !op.StartedAt.Equal(started)
	})
	require.ErrorIs(t, err, context.DeadlineExceeded, "something changed during the quiet period: %s", changed)
	newRuns := f.h.Kubelet.Runs()[runs:]
	assert.Empty(t, hookRuns(newRuns), "no hook ran: %s", runNames(newRuns))
	assert.GreaterOrEqual(t, seen, int(period/(15*time.Second)), "Argo CD compared the Application with git during the period (%d times)", seen)
	return seen
}

// approveOperators does what the production profile's README asks after applying the cluster part: the
// first InstallPlan of each OLM Subscription approved, then waits for the operator's CRDs.
func approveOperators(t *testing.T, f *fixture, cluster []*unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	dyn := f.kube.Dynamic()
	for _, o := range cluster {
		if o.GetKind() != "Subscription" {
			continue
		}
		subs := dyn.Resource(openshifttest.SubscriptionGVR).Namespace(o.GetNamespace())
		var sub *unstructured.Unstructured
		require.Eventually(t, func() bool {
			sub, _ = subs.Get(ctx, o.GetName(), metav1.GetOptions{})
			if sub == nil {
				return false
			}
			state, _, _ := unstructured.NestedString(sub.Object, "status", "state")
			installed, _, _ := unstructured.NestedString(sub.Object, "status", "installedCSV")
			ref, _, _ := unstructured.NestedString(sub.Object, "status", "installPlanRef", "name")
			return installed != "" || (state == "UpgradePending" && ref != "")
		}, time.Minute, 200*time.Millisecond, "Subscription %s/%s resolves to an InstallPlan (status: %v)", o.GetNamespace(), o.GetName(), statusOf(sub))
		if installed, _, _ := unstructured.NestedString(sub.Object, "status", "installedCSV"); installed != "" {
			continue // installed by an earlier overlay of the same cluster
		}
		ref, _, _ := unstructured.NestedString(sub.Object, "status", "installPlanRef", "name")
		_, err := dyn.Resource(openshifttest.InstallPlanGVR).Namespace(o.GetNamespace()).Patch(ctx, ref, types.MergePatchType,
			[]byte(`{"spec":{"approved":true}}`), metav1.PatchOptions{})
		require.NoError(t, err, "approving InstallPlan %s", ref)
		require.Eventually(t, func() bool {
			sub, _ = subs.Get(ctx, o.GetName(), metav1.GetOptions{})
			installed, _, _ := unstructured.NestedString(sub.Object, "status", "installedCSV")
			return installed != ""
		}, 2*time.Minute, 200*time.Millisecond, "Subscription %s/%s installs its CSV (status: %v)", o.GetNamespace(), o.GetName(), statusOf(sub))
		t.Logf("OLM: Subscription %s/%s installed %s", o.GetNamespace(), o.GetName(), nested(sub, "status", "installedCSV"))
	}
}

func statusOf(u *unstructured.Unstructured) any {
	if u == nil {
		return nil
	}
	return u.Object["status"]
}

// checkOpenShift: what the OpenShift stand-ins did under the overlay, so that "synced and quiet" is not
// the absence of the controllers: each ServiceAccount carries its dockercfg pull secret, the namespace
// its SCC ranges, and a CloudNativePG Cluster served the stack's sessions (the PostSync job's included).
func checkOpenShift(t *testing.T, f *fixture, overlay string, a *argocdtest.App) {
	t.Helper()
	ctx := context.Background()
	cs := f.kube.Clientset()
	ns, err := cs.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotEmpty(t, ns.Annotations[openshifttest.UIDRangeAnnotation], "namespace %s has its SCC UID range", namespace)
	for _, r := range a.Status.Resources {
		switch r.Kind {
		case "ServiceAccount":
			sa, err := cs.CoreV1().ServiceAccounts(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
			require.NoError(t, err)
			assert.NotEmpty(t, sa.Annotations[openshifttest.PullSecretRefAnnotation], "ServiceAccount %s has its dockercfg pull secret", r.Name)
		case "Cluster":
			cl, err := f.kube.Dynamic().Resource(openshifttest.ClusterGVR).Namespace(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, openshifttest.PhaseHealthy, nested(cl, "status", "phase"))
			all, plain := f.h.CNPG.SessionsByTLS(r.Namespace, r.Name)
			assert.Positive(t, all, "sessions went through Cluster %s's Services", r.Name)
			assert.Zero(t, plain, "every session to Cluster %s used TLS", r.Name)
			// The backend and the job verify with libpq's verify-full (a failed check fails their start);
			// LiteLLM's URL is Prisma's, which must verify too.
			assert.Equal(t, "verify-full", f.svc.LiteLLMDatabaseTLS(r.Namespace), "LiteLLM's database connection verifies the Cluster's certificate")
			cannot, _, _ := unstructured.NestedMap(cl.Object, "status", "managedRolesStatus", "cannotReconcile")
			assert.Empty(t, cannot, "every managed role reconciled")
		}
	}
	// With a Cluster, the PostSync job waited for it (its status as the operator writes it) before
	// writing the rows checked above through the Cluster's Service.
	var cluster bool
	for _, r := range a.Status.Resources {
		cluster = cluster || r.Kind == "Cluster"
	}
	var last *argocdtest.Run
	for _, r := range f.h.Kubelet.Runs() {
		if r.Job == "litemaas-sync" && r.Namespace == namespace {
			last = &r
		}
	}
	require.NotNil(t, last, "%s: the PostSync job ran", overlay)
	assert.Zero(t, last.ExitCode, "%s: %s", overlay, last.Output)
	if cluster {
		assert.Contains(t, last.Output, "cnpg cluster", "%s: the PostSync job waited for the CloudNativePG Cluster", overlay)
	}
}

// backupSecrets creates what the production profile's README asks for before the first sync: the
// Secrets a CloudNativePG Cluster's backup section names (the object store's credentials, its CA), with
// the keys it reads. Their values are the user's; nothing here checks them.
func backupSecrets(t *testing.T, f *fixture, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	keys := map[string]map[string]string{}
	var walk func(v any)
	walk = func(v any) {
		switch m := v.(type) {
		case map[string]any:
			name, okName := m["name"].(string)
			key, okKey := m["key"].(string)
			if okName && okKey && len(m) == 2 {
				if keys[name] == nil {
					keys[name] = map[string]string{}
				}
				keys[name][key] = "value-of-" + key
				return
			}
			for _, x := range m {
				walk(x)
			}
		case []any:
			for _, x := range m {
				walk(x)
			}
		}
	}
	for _, o := range objs {
		if o.GetKind() == "Cluster" && o.GroupVersionKind().Group == openshifttest.ClusterGVR.Group {
			backup, _, _ := unstructured.NestedMap(o.Object, "spec", "backup")
			walk(backup)
		}
	}
	if len(keys) == 0 {
		return
	}
	require.NoError(t, f.h.EnsureNamespace(ctx, namespace))
	for name, data := range keys {
		_, err := f.kube.Clientset().CoreV1().Secrets(namespace).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, StringData: data,
		}, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			require.NoError(t, err, "creating the Secret %s the production profile's README asks for", name)
		}
	}
}

// userSteps does what an overlay's README asks of the user before the first sync: for OAUTH_MODE=oidc,
// the provider's issuer in the overlay's settings (a commit), the namespace and the Secret holding the
// client registered at the provider.
func userSteps(t *testing.T, f *fixture, overlay string) {
	objs, err := manifests.Render(filepath.Join(f.repo.Work, overlay))
	require.NoError(t, err)
	backupSecrets(t, f, objs)
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
