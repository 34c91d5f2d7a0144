package deploy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/undeploy"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/verify"
)

const (
	appName = "step-06b-private-ai-litemaas"
	argoNS  = "openshift-gitops"
)

// TestLifecycle runs deploy, verify and undeploy in order against the real API server with the names of
// the tree (openshift-gitops, litemaas, the cluster-scoped OAuthClient and Groups), as a user would. A
// goroutine plays Argo CD. The transcripts are logged for the README.
func TestLifecycle(t *testing.T) {
	setupCluster(t)
	ctx := context.Background()
	root := repoCopy(t)
	admin := newCluster(t, srv.Config)
	apps := srv.Dynamic().Resource(gvrApplication).Namespace(argoNS)

	t.Run("preflight names the placeholder repoURL and a wrong domain; --init-overlay creates the overlay", func(t *testing.T) {
		srv.Apply(t, ingressObject("apps.other.example.org"))
		t.Cleanup(func() { srv.Apply(t, ingressObject(testDomain)) })

		var out syncBuffer
		err := Deploy(ctx, admin, Options{Root: root, Yes: true, Timeout: 5 * time.Second, Out: &out})
		t.Logf("deploy (wrong domain, placeholder repoURL):\n%s\nerror: %v", out.String(), err)
		var pe *report.ProblemsError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, 2, pe.Count)
		assert.Contains(t, out.String(), "https://github.com/YOUR-ORG/litemaas-gitops.git is the placeholder")
		assert.Contains(t, out.String(), "gitops/overlays/example is set for apps.cluster.example.com but the cluster's apps domain is apps.other.example.org")
		assert.Contains(t, out.String(), "--init-overlay other")
		// The pinned 0.4.0 backend is named, mitigated by the guard.
		assert.Contains(t, squeeze(out.String()), "backend advisory litemaas#137 OK gitops/overlays/example pins quay.io/rh-aiservices-bu/litemaas-backend:0.4.0")

		out = syncBuffer{}
		err = Deploy(ctx, admin, Options{Root: root, RepoURL: testRepoURL, InitOverlay: "other", Yes: true, Out: &out})
		t.Logf("deploy --init-overlay other:\n%s", out.String())
		require.NoError(t, err)
		assert.Contains(t, out.String(), "Created gitops/overlays/other for apps domain apps.other.example.org")
		assert.Contains(t, out.String(), "git add gitops/overlays/other")

		// A template copy with the one value replaced.
		tmpl, err := os.ReadFile(filepath.Join(root, "gitops/overlays/example", tree.SettingsFile))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(root, "gitops/overlays/other", tree.SettingsFile))
		require.NoError(t, err)
		assert.Equal(t, strings.Replace(string(tmpl), "appsDomain: "+testDomain, "appsDomain: apps.other.example.org", 1), string(got))
		hosts, err := tree.OverlayRoutes(filepath.Join(root, "gitops/overlays/other"))
		require.NoError(t, err)
		assert.Equal(t, tree.ExpectedHosts("apps.other.example.org"), hosts)
		clusterPart, err := os.ReadFile(filepath.Join(root, "gitops/overlays/other/cluster/kustomization.yaml"))
		require.NoError(t, err)
		assert.Contains(t, string(clusterPart), "../../../cluster")

		// --init-overlay stops before applying anything: Argo CD cannot sync an overlay that is not pushed.
		_, err = apps.Get(ctx, appName, metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "no Application applied, got %v", err)

		err = Deploy(ctx, admin, Options{Root: root, RepoURL: testRepoURL, InitOverlay: "other", Yes: true, Out: &syncBuffer{}})
		assert.ErrorContains(t, err, "gitops/overlays/other already exists")
	})

	t.Run("deploy without cluster-admin rights applies the Application and times out clearly", func(t *testing.T) {
		cfg := limitedUser(t)
		var out syncBuffer
		start := time.Now()
		err := Deploy(ctx, newCluster(t, cfg), Options{Root: root, RepoURL: testRepoURL, Yes: true, Timeout: 2 * time.Second, Out: &out})
		t.Logf("deploy (no Argo CD controller, no cluster-admin):\n%s\nerror: %v", out.String(), err)
		require.Error(t, err)
		assert.Less(t, time.Since(start), 15*time.Second, "the timeout bounds the wait")
		assert.ErrorContains(t, err, "timed out after 2s waiting for Application openshift-gitops/step-06b-private-ai-litemaas to be Synced and Healthy with its last sync Succeeded")
		assert.ErrorContains(t, err, "Last state: waiting for Argo CD to pick up the Application")
		assert.ErrorContains(t, err, "Argo CD has not processed the Application")
		assert.Contains(t, out.String(), "no cluster-admin rights (may not create")
		assert.Contains(t, out.String(), "a cluster admin must run `oc apply -k gitops/overlays/example/cluster` once; deploy continues without it")

		app, err := apps.Get(ctx, appName, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, "gitops/overlays/example", nested(app, "spec", "source", "path"))
		assert.Equal(t, testRepoURL, nested(app, "spec", "source", "repoURL"))
		assert.Equal(t, "litemaas", nested(app, "spec", "destination", "namespace"))
		assert.Equal(t, "normal", app.GetAnnotations()[refreshAnnotation])
		assert.Empty(t, app.GetFinalizers(), "the Application in git carries no resources-finalizer")
		_, err = srv.Dynamic().Resource(gvrOAuthClient).Get(ctx, "litemaas-oauth-client", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "the cluster part needs cluster-admin rights")

		// The next step starts from a cluster without the Application, so that the simulated Argo CD
		// syncs it from the moment deploy applies it.
		require.NoError(t, apps.Delete(ctx, appName, metav1.DeleteOptions{}))
	})

	simCtx, stopSim := context.WithCancel(ctx)
	defer stopSim()
	sim := &argoSim{t: t, namespace: argoNS, name: appName, destNS: tree.DefaultNamespace, models: goodModels,
		stepEvery: 300 * time.Millisecond, pruneDelay: 500 * time.Millisecond, populateDestination: true}
	go sim.run(simCtx)

	t.Run("deploy waits for Argo CD, then prints the access URLs and the job's summary", func(t *testing.T) {
		var out syncBuffer
		err := Deploy(ctx, admin, Options{Root: root, RepoURL: testRepoURL, Yes: true, Timeout: 30 * time.Second, Out: &out})
		t.Logf("deploy:\n%s", out.String())
		require.NoError(t, err)
		o := out.String()
		for _, want := range []string{
			"applied  OAuthClient litemaas-oauth-client",
			"created  Group litemaas-admins",
			"applied  Application openshift-gitops/step-06b-private-ai-litemaas (repo " + testRepoURL + ", path gitops/overlays/example)",
			"sync=OutOfSync health=Missing operation=Running (one or more tasks are running) postsync=-",
			"not healthy: Deployment/backend Progressing",
			"postsync=Job litemaas-sync Running: Pod is running",
			"operation=Succeeded (successfully synced (all tasks run)) postsync=Job litemaas-sync Succeeded",
			"is Synced and Healthy (revision 0123456789ab)",
			"LiteMaaS UI    https://litemaas-litemaas.apps.cluster.example.com",
			"LiteLLM Proxy  https://litellm-litemaas.apps.cluster.example.com",
			"Backend API    https://litemaas-api-litemaas.apps.cluster.example.com",
			"Model sync (succeeded, finished 2026-05-04T10:00:00Z): 3 models: 2 served, 1 unavailable",
		} {
			assert.Contains(t, o, want)
		}
		oc, err := srv.Dynamic().Resource(gvrOAuthClient).Get(ctx, "litemaas-oauth-client", metav1.GetOptions{})
		require.NoError(t, err)
		uris, _, _ := unstructured.NestedStringSlice(oc.Object, "redirectURIs")
		assert.Equal(t, []string{"https://litemaas-litemaas.apps.cluster.example.com/api/auth/callback"}, uris)
	})

	t.Run("deploy again changes nothing and keeps group members", func(t *testing.T) {
		_, err := srv.Dynamic().Resource(gvrGroup).Patch(ctx, "litemaas-admins", types.MergePatchType,
			[]byte(`{"users":["alice"]}`), metav1.PatchOptions{FieldManager: "oc"})
		require.NoError(t, err)
		var out syncBuffer
		err = Deploy(ctx, admin, Options{Root: root, RepoURL: testRepoURL, Yes: true, Timeout: 30 * time.Second, Out: &out})
		t.Logf("deploy (again):\n%s", out.String())
		require.NoError(t, err)
		assert.Contains(t, out.String(), "kept     Group litemaas-admins")
		g, err := srv.Dynamic().Resource(gvrGroup).Get(ctx, "litemaas-admins", metav1.GetOptions{})
		require.NoError(t, err)
		users, _, _ := unstructured.NestedStringSlice(g.Object, "users")
		assert.Equal(t, []string{"alice"}, users)
	})

	t.Run("verify: all green", func(t *testing.T) {
		rs := newRouteServer(t, testDomain)
		var out syncBuffer
		err := verify.Verify(ctx, admin, verify.Options{Namespace: tree.DefaultNamespace, Catalog: "testdata/models.yaml", HTTPClient: rs.Client, Out: &out})
		t.Logf("verify:\n%s", out.String())
		require.NoError(t, err)
		// The one warning: this fixture's LiteLLM neither reports its version nor runs a tagged image, so
		// which advisories apply cannot be told.
		assert.Contains(t, out.String(), "cannot tell the LiteLLM version")
		assert.Contains(t, out.String(), "verify: all 13 checks passed (1 warnings, 2 skipped)")
	})

	t.Run("undeploy removes what deploy created", func(t *testing.T) {
		var out syncBuffer
		err := undeploy.Undeploy(ctx, admin, undeploy.Options{Root: root, Cluster: true, Wait: 3 * time.Second, In: strings.NewReader("yes\n"), Out: &out})
		t.Logf("undeploy --cluster (answering yes):\n%s", out.String())
		require.NoError(t, err)
		o := out.String()
		assert.Contains(t, o, "Deleting namespace litemaas deletes the PostgreSQL database and the backups volume with it. Continue? [y/N]")
		assert.Regexp(t, `Application openshift-gitops/litemaas-root\s+already gone`, o)
		assert.Regexp(t, `Application openshift-gitops/step-06b-private-ai-litemaas\s+deleted`, o)
		assert.Regexp(t, `Namespace litemaas\s+deletion requested; still terminating after 3s`, o)
		assert.Regexp(t, `OAuthClient litemaas-oauth-client\s+deleted`, o)
		assert.Regexp(t, `Group litemaas-admins\s+deleted`, o)
		assert.Regexp(t, `Group litemaas-users\s+deleted`, o)

		_, err = apps.Get(ctx, appName, metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "Application deleted once Argo CD pruned, got %v", err)
		assert.True(t, sim.sawDeletion(), "the Application was deleted with Argo CD's finalizer on it")
		ns, err := srv.Clientset().CoreV1().Namespaces().Get(ctx, tree.DefaultNamespace, metav1.GetOptions{})
		require.NoError(t, err, "without a namespace controller the namespace stays Terminating")
		assert.NotNil(t, ns.DeletionTimestamp)
		for _, g := range []string{"litemaas-admins", "litemaas-users"} {
			_, err = srv.Dynamic().Resource(gvrGroup).Get(ctx, g, metav1.GetOptions{})
			assert.True(t, apierrors.IsNotFound(err), "Group %s deleted", g)
		}
		_, err = srv.Dynamic().Resource(gvrOAuthClient).Get(ctx, "litemaas-oauth-client", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err))
		_, err = srv.Dynamic().Resource(gvrIngress).Get(ctx, "cluster", metav1.GetOptions{})
		assert.NoError(t, err, "undeploy leaves the cluster's configuration alone")
	})

	t.Run("undeploy again reports what is already gone", func(t *testing.T) {
		var out syncBuffer
		err := undeploy.Undeploy(ctx, admin, undeploy.Options{Root: root, Cluster: true, Yes: true, Wait: time.Second, Out: &out})
		t.Logf("undeploy --cluster --yes (again):\n%s", out.String())
		require.NoError(t, err)
		o := out.String()
		assert.Regexp(t, `Application openshift-gitops/step-06b-private-ai-litemaas\s+already gone`, o)
		assert.Regexp(t, `OAuthClient litemaas-oauth-client\s+already gone`, o)
		assert.Regexp(t, `Namespace litemaas\s+deletion requested; still terminating`, o)
		assert.Contains(t, o, "Namespace litemaas is already being deleted")
	})

	t.Run("undeploy without confirmation changes nothing", func(t *testing.T) {
		srv.Apply(t, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "user.openshift.io/v1", "kind": "Group", "metadata": map[string]any{"name": "litemaas-users"}, "users": []any{},
		}})
		var out syncBuffer
		err := undeploy.Undeploy(ctx, admin, undeploy.Options{Root: root, Cluster: true, Wait: time.Second, In: strings.NewReader(""), Out: &out})
		t.Logf("undeploy --cluster (no answer):\n%s\nerror: %v", out.String(), err)
		require.ErrorIs(t, err, report.ErrNotConfirmed)
		_, err = srv.Dynamic().Resource(gvrGroup).Get(ctx, "litemaas-users", metav1.GetOptions{})
		assert.NoError(t, err)
	})
}

func nested(u *unstructured.Unstructured, path ...string) string {
	s, _, _ := unstructured.NestedString(u.Object, path...)
	return s
}

// limitedUser returns the credentials of a project admin without cluster-admin rights: it may manage
// Applications and read namespaces and the ingress config, nothing cluster-scoped beyond that.
func limitedUser(t *testing.T) *rest.Config {
	t.Helper()
	ctx := context.Background()
	ns := srv.CreateNamespace(t, "deployer")
	cfg := srv.TokenConfig(t, ns, "deployer")
	rbac := srv.Clientset().RbacV1()
	_, err := rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "litemaas-deployer-" + ns},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get"}},
			{APIGroups: []string{"config.openshift.io"}, Resources: []string{"ingresses"}, Verbs: []string{"get"}},
			{APIGroups: []string{"argoproj.io"}, Resources: []string{"applications"}, Verbs: []string{"get", "list", "watch", "create", "patch"}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "litemaas-deployer-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "litemaas-deployer-" + ns},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "deployer", Namespace: ns}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return cfg
}
