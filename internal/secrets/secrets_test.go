package secrets_test

// Tests against a real kube-apiserver (internal/kapitest): the Secrets as the API server stores them,
// resourceVersions to prove that nothing was written, and the RBAC and admission policy of the
// manifests exercised with a real ServiceAccount token.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/litemaas-gitops/litemaas-gitops/internal/job"
	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/secrets"
)

var srv *kapitest.Server

func TestMain(m *testing.M) {
	srv = kapitest.MustStart(m)
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

const (
	callbackURL = "https://litemaas-litemaas.apps.example.com/api/auth/callback"
	jobSA       = "litemaas-secrets"
	// Directories relative to this package.
	secretsJobDir  = "../../gitops/base/secrets-job"
	clusterRBACDir = "../../gitops/cluster-rbac"
	saModeDir      = "testdata/serviceaccount-mode"
	oauthCRDFile   = "../../gitops/test/crds/oauthclients.oauth.openshift.io.yaml"
)

// --- helpers ------------------------------------------------------------------------------------

var crdOnce sync.Once

// installOAuthClientCRD installs the OAuthClient CRD of gitops/test/crds once per test binary.
func installOAuthClientCRD(t *testing.T) {
	t.Helper()
	crdOnce.Do(func() {
		data, err := os.ReadFile(oauthCRDFile)
		require.NoError(t, err)
		crd := &unstructured.Unstructured{}
		require.NoError(t, yaml.Unmarshal(data, &crd.Object))
		srv.Apply(t, crd)
	})
}

// createOAuthClient creates an OAuthClient as gitops/cluster/ does: no secret, a redirect URI.
func createOAuthClient(t *testing.T, name string, redirect string) {
	t.Helper()
	installOAuthClientCRD(t)
	srv.Apply(t, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion":   "oauth.openshift.io/v1",
		"kind":         "OAuthClient",
		"metadata":     map[string]any{"name": name},
		"grantMethod":  "auto",
		"redirectURIs": []any{redirect},
	}})
}

func getOAuthClient(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	oc, err := srv.Dynamic().Resource(secrets.OAuthClientResource).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return oc
}

// run is one run of `litemaas-sync secrets` with the given environment and clients.
type run struct {
	out, logs string
	err       error
}

func runJob(t *testing.T, env map[string]string, dyn dynamic.Interface) run {
	t.Helper()
	var out, logs bytes.Buffer
	o := &job.SecretsOptions{Env: envconfig.MapLookuper(env), Log: &logs, Dynamic: dyn}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := o.Run(ctx, &out)
	return run{out: out.String(), logs: logs.String(), err: err}
}

// adminRun runs the job with admin clients, in oauthclient mode against an OAuthClient of its own.
func adminRun(t *testing.T, ns, oauthClient string, extra ...string) run {
	t.Helper()
	env := map[string]string{
		"NAMESPACE": ns, "OAUTH_MODE": "oauthclient", "OAUTH_CALLBACK_URL": callbackURL,
		"OAUTH_CLIENT_NAME": oauthClient, "LOG_FORMAT": "json",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return runJob(t, env, srv.Dynamic())
}

// versions returns name -> resourceVersion of every Secret in ns.
func versions(t *testing.T, ns string) map[string]string {
	t.Helper()
	list, err := srv.Clientset().CoreV1().Secrets(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	out := map[string]string{}
	for _, s := range list.Items {
		out[s.Name] = s.ResourceVersion
	}
	return out
}

func getSecret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	s, err := srv.Clientset().CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err, "Secret %s/%s", ns, name)
	return s
}

func createSecret(t *testing.T, ns, name string, kv ...string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string][]byte{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.Data[kv[i]] = []byte(kv[i+1])
	}
	_, err := srv.Clientset().CoreV1().Secrets(ns).Create(context.Background(), s, metav1.CreateOptions{})
	require.NoError(t, err)
}

// assertNoSecretValues checks that no value held in a Secret of ns (nor in the extra values) appears
// in the texts: logs, output, error messages.
func assertNoSecretValues(t *testing.T, ns string, extra []string, texts ...string) {
	t.Helper()
	list, err := srv.Clientset().CoreV1().Secrets(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	values := slices.Clone(extra)
	for _, s := range list.Items {
		for k, v := range s.Data {
			if k == secrets.KeyPostgresUser || k == secrets.KeyRoleUsername {
				continue // a user name, not a secret
			}
			values = append(values, string(v))
		}
	}
	require.NotEmpty(t, values)
	all := strings.Join(texts, "\n")
	for _, v := range values {
		if len(v) < 6 {
			continue
		}
		if strings.Contains(all, v) {
			t.Errorf("a secret value (%d characters) appears in the logs, output or error", len(v))
		}
		if u, err := url.Parse(v); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && strings.Contains(all, pw) {
				t.Errorf("a database password appears in the logs, output or error")
			}
		}
	}
}

// matchesSecret and equalSecret report secret/key names and lengths only, never the values: test
// output is a log like any other, and must not show a generated value either.
func matchesSecret(t *testing.T, pattern, value, what string) {
	t.Helper()
	if !regexp.MustCompile(pattern).MatchString(value) {
		t.Errorf("%s (%d characters) does not match %s", what, len(value), pattern)
	}
}

func equalSecret(t *testing.T, want, got, what string) {
	t.Helper()
	if want != got {
		t.Errorf("%s: the values differ (%d and %d characters)", what, len(want), len(got))
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// render builds a kustomization directory and returns its objects, placed in namespace ns (the
// namespace of namespaced objects and of ServiceAccount subjects of bindings).
func render(t *testing.T, dir, ns string) []*unstructured.Unstructured {
	t.Helper()
	abs, err := filepath.Abs(dir)
	require.NoError(t, err)
	objs, err := manifests.Render(abs)
	require.NoError(t, err, "rendering %s", dir)
	for _, o := range objs {
		switch o.GetKind() {
		case "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
		default:
			o.SetNamespace(ns)
		}
		if subjects, ok, _ := unstructured.NestedSlice(o.Object, "subjects"); ok {
			for _, s := range subjects {
				if m, ok := s.(map[string]any); ok && m["kind"] == "ServiceAccount" {
					m["namespace"] = ns
				}
			}
			require.NoError(t, unstructured.SetNestedSlice(o.Object, subjects, "subjects"))
		}
	}
	return objs
}

func pick(objs []*unstructured.Unstructured, kinds ...string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if slices.Contains(kinds, o.GetKind()) {
			out = append(out, o)
		}
	}
	return out
}

// jobClients returns clients authenticated as the job's ServiceAccount in ns, with a token from the
// TokenRequest API, exactly what the Job's pod gets.
func jobClients(t *testing.T, ns string) (*rest.Config, kubernetes.Interface, dynamic.Interface) {
	t.Helper()
	cfg := srv.TokenConfig(t, ns, jobSA)
	kc, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	return cfg, kc, dyn
}

// jobEnv returns the environment the Job manifest gives its container, with NAMESPACE resolved to ns
// and the apps-domain placeholder replaced as an overlay would.
func jobEnv(t *testing.T, objs []*unstructured.Unstructured, ns string) map[string]string {
	t.Helper()
	j := manifests.Find(objs, "Job", "litemaas-secrets")
	require.NotNil(t, j)
	containers, _, _ := unstructured.NestedSlice(j.Object, "spec", "template", "spec", "containers")
	require.Len(t, containers, 1)
	env := map[string]string{}
	list, _, _ := unstructured.NestedSlice(containers[0].(map[string]any), "env")
	for _, e := range list {
		m := e.(map[string]any)
		name := m["name"].(string)
		if v, ok := m["value"].(string); ok {
			env[name] = strings.ReplaceAll(v, secrets.PlaceholderDomain, "apps.example.com")
			continue
		}
		fp, _, _ := unstructured.NestedString(m, "valueFrom", "fieldRef", "fieldPath")
		switch fp {
		case "metadata.labels['batch.kubernetes.io/job-name']", "metadata.labels['batch.kubernetes.io/controller-uid']":
			// The Job the outcome's Event goes to: none in this test, so none is recorded.
			continue
		}
		require.Equal(t, "metadata.namespace", fp, "env %s: only the namespace and the Job's labels may come from the pod", name)
		env[name] = ns
	}
	return env
}

// simulateTokenController does what kube-controller-manager's token controller does for a
// service-account-token Secret whose ServiceAccount exists: it writes a token into it. tokenFn
// returns the token to write; a Secret that already has a token is left alone unless rotate is set.
func simulateTokenController(t *testing.T, ns, name string, token func() string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	cs := srv.Clientset()
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			s, err := cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil || s.Type != corev1.SecretTypeServiceAccountToken {
				continue
			}
			sa, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, s.Annotations[corev1.ServiceAccountNameKey], metav1.GetOptions{})
			if err != nil {
				continue // the real controller deletes such a Secret
			}
			want := token()
			if string(s.Data[corev1.ServiceAccountTokenKey]) == want {
				continue
			}
			if s.Data == nil {
				s.Data = map[string][]byte{}
			}
			s.Data[corev1.ServiceAccountTokenKey] = []byte(want)
			s.Annotations[corev1.ServiceAccountUIDKey] = string(sa.UID)
			_, _ = cs.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{})
		}
	}()
	return func() { cancel(); <-done }
}

func randomToken(t *testing.T) string {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return "eyJ" + hex.EncodeToString(b)
}

// --- the contract --------------------------------------------------------------------------------

// checkShapes checks the Secrets of ns against the contract: every key, the prefixes and lengths,
// and the derived values equal to their sources.
func checkShapes(t *testing.T, ns string) {
	t.Helper()
	pg, ll, be := getSecret(t, ns, secrets.PostgresSecret), getSecret(t, ns, secrets.LiteLLMSecret), getSecret(t, ns, secrets.BackendSecret)
	for _, s := range []*corev1.Secret{pg, ll, be} {
		for _, sc := range secrets.Contract {
			if sc.Name != s.Name {
				continue
			}
			for _, k := range sc.Keys {
				assert.NotEmpty(t, s.Data[k], "%s/%s", s.Name, k)
			}
		}
		assert.Equal(t, corev1.SecretTypeOpaque, s.Type)
		assert.Equal(t, "IgnoreExtraneous", s.Annotations["argocd.argoproj.io/compare-options"], s.Name)
		assert.Contains(t, s.Annotations["argocd.argoproj.io/sync-options"], "Prune=false", s.Name)
	}
	v := func(s *corev1.Secret, k string) string { return string(s.Data[k]) }
	user, password := v(pg, "POSTGRES_USER"), v(pg, "POSTGRES_PASSWORD")
	matchesSecret(t, `^[A-Za-z0-9_-]{32,}$`, password, "POSTGRES_PASSWORD")
	matchesSecret(t, `^sk-[A-Za-z0-9]{32,}$`, v(ll, "LITELLM_MASTER_KEY"), "LITELLM_MASTER_KEY")
	assert.GreaterOrEqual(t, len(v(ll, "LITELLM_SALT_KEY")), 32)
	assert.GreaterOrEqual(t, len(v(be, "JWT_SECRET")), 48)
	assert.GreaterOrEqual(t, len(v(be, "OAUTH_CLIENT_SECRET")), 32)
	for _, k := range strings.Split(v(be, "ADMIN_API_KEYS"), ",") {
		matchesSecret(t, `^ltm_admin_[A-Za-z0-9]{32,}$`, k, "ADMIN_API_KEYS entry")
	}
	assert.NotEmpty(t, user)
	// Each URL names its component's role with that role's password from postgres-secret.
	for _, u := range []struct{ got, role, key, path string }{
		{v(ll, "DATABASE_URL"), secrets.RoleLiteLLM, secrets.KeyLiteLLMPassword, "litellm_db"},
		{v(be, "LITELLM_DATABASE_URL"), secrets.RoleModelReader, secrets.KeyModelReaderPassword, "litellm_db"},
		{v(be, "DATABASE_URL"), secrets.RoleBackend, secrets.KeyBackendPassword, "litemaas_db?sslmode=disable"},
	} {
		matchesSecret(t, `^[A-Za-z0-9_-]{32,}$`, v(pg, u.key), u.key)
		equalSecret(t, fmt.Sprintf("postgresql://%s:%s@postgres:5432/%s", u.role, url.PathEscape(v(pg, u.key)), u.path), u.got, u.role+" URL built from postgres-secret/"+u.key)
	}
	equalSecret(t, v(ll, "LITELLM_MASTER_KEY"), v(be, "LITELLM_API_KEY"), "LITELLM_API_KEY == LITELLM_MASTER_KEY")
}

// --- tests -----------------------------------------------------------------------------------------

func TestFirstRunCreatesSecondRunChangesNothing(t *testing.T) {
	ns := srv.CreateNamespace(t, "first-run")
	oc := "oc-" + ns
	createOAuthClient(t, oc, "https://stale.example.com/api/auth/callback")

	r1 := adminRun(t, ns, oc)
	require.NoError(t, r1.err, r1.logs)
	assert.Equal(t, "secrets: created postgres-secret(6 keys), created litellm-secret(3 keys), created backend-secret(6 keys); "+
		"oauthclient "+oc+" secret+redirect set\n", r1.out)
	checkShapes(t, ns)
	pg := getSecret(t, ns, secrets.PostgresSecret)
	assert.Equal(t, "litemaas_admin", string(pg.Data["POSTGRES_USER"]))
	assert.Equal(t, map[string]string{"app.kubernetes.io/part-of": "litemaas", "app.kubernetes.io/managed-by": "litemaas-sync"}, pg.Labels)

	be := getSecret(t, ns, secrets.BackendSecret)
	client := getOAuthClient(t, oc)
	sec, _, _ := unstructured.NestedString(client.Object, "secret")
	equalSecret(t, string(be.Data["OAUTH_CLIENT_SECRET"]), sec, "OAuthClient secret == OAUTH_CLIENT_SECRET")
	uris, _, _ := unstructured.NestedStringSlice(client.Object, "redirectURIs")
	assert.Equal(t, []string{callbackURL}, uris)
	grant, _, _ := unstructured.NestedString(client.Object, "grantMethod")
	assert.Equal(t, "auto", grant, "other fields of the OAuthClient are kept")

	before := versions(t, ns)
	ocVersion := client.GetResourceVersion()
	r2 := adminRun(t, ns, oc)
	require.NoError(t, r2.err, r2.logs)
	assert.Equal(t, "secrets: unchanged postgres-secret, unchanged litellm-secret, unchanged backend-secret; oauthclient "+oc+" unchanged\n", r2.out)
	assert.Equal(t, before, versions(t, ns), "the second run wrote a Secret")
	assert.Equal(t, ocVersion, getOAuthClient(t, oc).GetResourceVersion(), "the second run wrote the OAuthClient")

	assertNoSecretValues(t, ns, []string{sec}, r1.out, r1.logs, r2.out, r2.logs)
	assert.Contains(t, r1.logs, `"msg":"secret created"`, "JSON logs, as LOG_FORMAT=json asks")

	// A complete Secret without the Argo CD annotations (made by hand, or once in git) gets them, and
	// nothing else changes.
	ll := getSecret(t, ns, secrets.LiteLLMSecret)
	data := ll.Data
	delete(ll.Annotations, "argocd.argoproj.io/sync-options")
	_, err := srv.Clientset().CoreV1().Secrets(ns).Update(context.Background(), ll, metav1.UpdateOptions{})
	require.NoError(t, err)
	before = versions(t, ns)
	r3 := adminRun(t, ns, oc)
	require.NoError(t, r3.err, r3.logs)
	assert.Equal(t, "secrets: unchanged postgres-secret, annotated litellm-secret, unchanged backend-secret; oauthclient "+oc+" unchanged\n", r3.out)
	after := versions(t, ns)
	assert.NotEqual(t, before[secrets.LiteLLMSecret], after[secrets.LiteLLMSecret])
	delete(before, secrets.LiteLLMSecret)
	delete(after, secrets.LiteLLMSecret)
	assert.Equal(t, before, after)
	ll = getSecret(t, ns, secrets.LiteLLMSecret)
	assert.Equal(t, "Prune=false", ll.Annotations["argocd.argoproj.io/sync-options"])
	assert.True(t, reflect.DeepEqual(data, ll.Data), "data unchanged")
}

func TestPartialSecretsKeepValuesAndGainKeys(t *testing.T) {
	ns := srv.CreateNamespace(t, "partial")
	oc := "oc-" + ns
	createOAuthClient(t, oc, callbackURL)
	const password, salt = "Existing-Password_0123456789abcdef", "ExistingSaltKeyExistingSaltKey0123"
	createSecret(t, ns, secrets.PostgresSecret, "POSTGRES_PASSWORD", password)
	createSecret(t, ns, secrets.LiteLLMSecret, "LITELLM_SALT_KEY", salt, "UNRELATED", "kept as is")
	// A Secret that already carries one of the Argo CD annotations with another value keeps it.
	ll := getSecret(t, ns, secrets.LiteLLMSecret)
	ll.Labels = map[string]string{"team": "ai"}
	ll.Annotations = map[string]string{"argocd.argoproj.io/sync-options": "Prune=false,Delete=false"}
	_, err := srv.Clientset().CoreV1().Secrets(ns).Update(context.Background(), ll, metav1.UpdateOptions{})
	require.NoError(t, err)

	r := adminRun(t, ns, oc)
	require.NoError(t, r.err, r.logs)
	assert.Equal(t, "secrets: filled postgres-secret(5 keys), filled litellm-secret(2 keys), created backend-secret(6 keys); oauthclient "+oc+" secret set\n", r.out)
	checkShapes(t, ns)

	pg := getSecret(t, ns, secrets.PostgresSecret)
	equalSecret(t, password, string(pg.Data["POSTGRES_PASSWORD"]), "existing password kept")
	assert.Equal(t, "litemaas_admin", string(pg.Data["POSTGRES_USER"]), "missing user filled")
	ll = getSecret(t, ns, secrets.LiteLLMSecret)
	equalSecret(t, salt, string(ll.Data["LITELLM_SALT_KEY"]), "the salt key never changes")
	assert.Equal(t, "kept as is", string(ll.Data["UNRELATED"]))
	assert.Equal(t, map[string]string{"team": "ai"}, ll.Labels, "labels of an existing Secret are left alone")
	assert.Equal(t, "Prune=false,Delete=false", ll.Annotations["argocd.argoproj.io/sync-options"])
	assert.Equal(t, "IgnoreExtraneous", ll.Annotations["argocd.argoproj.io/compare-options"])
	// The components get their own roles: the superuser's password is in no URL.
	for _, sec := range []string{secrets.LiteLLMSecret, secrets.BackendSecret} {
		for k, v := range getSecret(t, ns, sec).Data {
			if strings.Contains(string(v), password) {
				t.Errorf("%s/%s holds the superuser's password", sec, k)
			}
		}
	}

	before := versions(t, ns)
	r2 := adminRun(t, ns, oc)
	require.NoError(t, r2.err)
	assert.Equal(t, before, versions(t, ns))
	assertNoSecretValues(t, ns, nil, r.out, r.logs, r2.out, r2.logs)
}

func TestMalformedChangesNothing(t *testing.T) {
	const (
		password = "GoodPassword0123456789abcdef"
		master   = "sk-GoodMasterKeyGoodMasterKey0123"
		url1     = "postgresql://litemaas_litellm:GoodPassword0123456789abcdef@postgres:5432/litellm_db"
	)
	tests := []struct {
		name string
		// setup creates the Secrets of the case (besides a valid postgres-secret).
		setup      func(t *testing.T, ns string)
		wantInErr  []string
		secretVals []string
	}{
		{
			name: "master key without sk-",
			setup: func(t *testing.T, ns string) {
				createSecret(t, ns, secrets.LiteLLMSecret, "LITELLM_MASTER_KEY", "MasterKeyWithoutPrefix0123")
			},
			wantInErr:  []string{`litellm-secret/LITELLM_MASTER_KEY: must start with "sk-"`},
			secretVals: []string{"MasterKeyWithoutPrefix0123"},
		},
		{
			name: "API key that differs from the master key, and an admin key with a space",
			setup: func(t *testing.T, ns string) {
				createSecret(t, ns, secrets.LiteLLMSecret, "LITELLM_MASTER_KEY", master)
				createSecret(t, ns, secrets.BackendSecret, "LITELLM_API_KEY", "sk-AnotherKeyAnotherKey0123",
					"ADMIN_API_KEYS", "ltm_admin_FirstAdminKey0123, ltm_admin_SecondAdminKey0123")
			},
			wantInErr: []string{
				"backend-secret/ADMIN_API_KEYS: contains whitespace",
				"backend-secret/LITELLM_API_KEY: must equal litellm-secret/LITELLM_MASTER_KEY",
			},
			secretVals: []string{"AnotherKey", "FirstAdminKey0123", master},
		},
		{
			name: "database URL with a stale password",
			setup: func(t *testing.T, ns string) {
				createSecret(t, ns, secrets.LiteLLMSecret, "DATABASE_URL", strings.Replace(url1, password, "StalePassword0123", 1))
			},
			wantInErr:  []string{"litellm-secret/DATABASE_URL: its password differs from postgres-secret/LITEMAAS_LITELLM_PASSWORD; it must be postgresql://litemaas_litellm:<postgres-secret/LITEMAAS_LITELLM_PASSWORD>@postgres:5432/litellm_db"},
			secretVals: []string{"StalePassword0123"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := srv.CreateNamespace(t, "malformed")
			oc := "oc-" + ns
			createOAuthClient(t, oc, callbackURL)
			createSecret(t, ns, secrets.PostgresSecret, "POSTGRES_USER", "litemaas_admin", "POSTGRES_PASSWORD", password,
				secrets.KeyLiteLLMPassword, password)
			tc.setup(t, ns)
			before := versions(t, ns)
			ocVersion := getOAuthClient(t, oc).GetResourceVersion()

			r := adminRun(t, ns, oc)
			require.Error(t, r.err)
			assert.Equal(t, job.ExitInvalid, job.Code(r.err), "exit code 2: retrying cannot help")
			for _, want := range tc.wantInErr {
				assert.Contains(t, r.err.Error(), want)
			}
			assert.Contains(t, r.err.Error(), "nothing was changed")
			assert.Empty(t, r.out, "no summary: nothing was done")

			assert.Equal(t, before, versions(t, ns), "a Secret was written or created")
			assert.Equal(t, ocVersion, getOAuthClient(t, oc).GetResourceVersion(), "the OAuthClient was written")
			assertNoSecretValues(t, ns, tc.secretVals, r.out, r.logs, r.err.Error())
		})
	}
}

func TestOAuthClientMissing(t *testing.T) {
	installOAuthClientCRD(t)
	ns := srv.CreateNamespace(t, "no-oauthclient")
	r := adminRun(t, ns, "does-not-exist")
	require.Error(t, r.err)
	assert.Equal(t, job.ExitFailed, job.Code(r.err))
	assert.ErrorIs(t, r.err, secrets.ErrOAuthClientUnavailable)
	assert.Contains(t, r.err.Error(), "a cluster admin must")
	assert.Contains(t, r.err.Error(), "oc apply -k gitops/overlays/<cluster>/cluster")
	// The Secrets were written all the same: the rest of the stack can start.
	assert.Equal(t, "secrets: created postgres-secret(6 keys), created litellm-secret(3 keys), created backend-secret(6 keys); oauthclient does-not-exist NOT set\n", r.out)
	checkShapes(t, ns)
	assertNoSecretValues(t, ns, nil, r.out, r.logs, r.err.Error())
}

func TestBadConfigurationExits2(t *testing.T) {
	ns := srv.CreateNamespace(t, "bad-config")
	tests := map[string]map[string]string{
		"unknown mode":        {"OAUTH_MODE": "both"},
		"placeholder domain":  {"OAUTH_CALLBACK_URL": "https://litemaas-litemaas.CLUSTER_APPS_DOMAIN/api/auth/callback"},
		"port not a number":   {"POSTGRES_PORT": "five"},
		"same database twice": {"LITELLM_DATABASE": "litemaas_db"},
	}
	for name, extra := range tests {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"NAMESPACE": ns, "OAUTH_CALLBACK_URL": callbackURL}
			for k, v := range extra {
				env[k] = v
			}
			r := runJob(t, env, srv.Dynamic())
			require.Error(t, r.err)
			assert.Equal(t, job.ExitInvalid, job.Code(r.err), r.err.Error())
			assert.Empty(t, versions(t, ns), "nothing created")
		})
	}
}

// TestRBAC applies the ServiceAccount, Role and RoleBinding of gitops/base/secrets-job and the
// ClusterRole of gitops/cluster-rbac, then runs the job with a real token of that ServiceAccount and
// the Job manifest's own environment.
func TestRBAC(t *testing.T) {
	ctx := context.Background()
	ns := srv.CreateNamespace(t, "rbac")
	other := srv.CreateNamespace(t, "rbac-other")
	objs := render(t, secretsJobDir, ns)
	srv.Apply(t, pick(objs, "ServiceAccount", "Role", "RoleBinding")...)
	srv.Apply(t, pick(render(t, clusterRBACDir, ns), "ClusterRole", "ClusterRoleBinding")...)
	createOAuthClient(t, secrets.DefaultOAuthClientName, "https://litemaas-litemaas.apps.old.example.com/api/auth/callback")
	createSecret(t, ns, "unrelated", "password", "UnrelatedPassword0123")
	createSecret(t, other, secrets.PostgresSecret, "POSTGRES_PASSWORD", "OtherNamespacePassword0123")

	_, kc, dyn := jobClients(t, ns)
	env := jobEnv(t, objs, ns)
	assert.Equal(t, "oauthclient", env["OAUTH_MODE"])

	r := runJob(t, env, dyn)
	require.NoError(t, r.err, r.logs)
	checkShapes(t, ns)
	client := getOAuthClient(t, secrets.DefaultOAuthClientName)
	uris, _, _ := unstructured.NestedStringSlice(client.Object, "redirectURIs")
	assert.Equal(t, []string{callbackURL}, uris)
	before := versions(t, ns)
	r2 := runJob(t, env, dyn)
	require.NoError(t, r2.err, r2.logs)
	assert.Equal(t, before, versions(t, ns))

	forbidden := func(what string, err error) {
		t.Helper()
		assert.True(t, apierrors.IsForbidden(err), "%s: want Forbidden, got %v", what, err)
	}
	core := kc.CoreV1()
	_, err := core.Secrets(ns).Get(ctx, "unrelated", metav1.GetOptions{})
	forbidden("get another Secret", err)
	_, err = core.Secrets(ns).List(ctx, metav1.ListOptions{})
	forbidden("list Secrets", err)
	_, err = core.Secrets(ns).Watch(ctx, metav1.ListOptions{})
	forbidden("watch Secrets", err)
	err = core.Secrets(ns).Delete(ctx, secrets.PostgresSecret, metav1.DeleteOptions{})
	forbidden("delete postgres-secret", err)
	_, err = core.ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
	forbidden("get a ConfigMap", err)
	_, err = core.Secrets(other).Get(ctx, secrets.PostgresSecret, metav1.GetOptions{})
	forbidden("get postgres-secret in another namespace", err)
	_, err = core.Secrets(other).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secrets.LiteLLMSecret}}, metav1.CreateOptions{})
	forbidden("create a Secret in another namespace", err)
	_, err = core.ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "litemaas-oauth"}}, metav1.CreateOptions{})
	forbidden("create a ServiceAccount (oauthclient mode)", err)
	_, err = dyn.Resource(secrets.OAuthClientResource).Get(ctx, "console", metav1.GetOptions{})
	forbidden("get another OAuthClient", err)
	_, err = dyn.Resource(secrets.OAuthClientResource).List(ctx, metav1.ListOptions{})
	forbidden("list OAuthClients", err)
	err = dyn.Resource(secrets.OAuthClientResource).Delete(ctx, secrets.DefaultOAuthClientName, metav1.DeleteOptions{})
	forbidden("delete the OAuthClient", err)

	// The same job pointed at another namespace fails on RBAC at once (no retry can fix a Role), exit 2,
	// and says what is missing.
	env["NAMESPACE"] = other
	r3 := runJob(t, env, dyn)
	require.Error(t, r3.err)
	assert.Equal(t, job.ExitInvalid, job.Code(r3.err))
	assert.Contains(t, r3.err.Error(), "needs `get` on it")
	assert.Equal(t, []string{secrets.PostgresSecret}, keys(versions(t, other)), "nothing created in the other namespace")

	assertNoSecretValues(t, ns, []string{"OtherNamespacePassword0123"}, r.out, r.logs, r2.out, r2.logs, r3.out, r3.logs, errText(r3.err))
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestServiceAccountMode runs the job as its ServiceAccount with the RBAC an overlay using the
// component oauth-serviceaccount renders; a simulated token controller fills the token.
func TestServiceAccountMode(t *testing.T) {
	ns := srv.CreateNamespace(t, "sa-mode")
	objs := render(t, saModeDir, ns)
	srv.Apply(t, pick(objs, "ServiceAccount", "Role", "RoleBinding")...)
	// Leave the component's ServiceAccount litemaas-oauth out: on the first sync the PreSync job
	// runs before Argo CD creates it, so the job creates it.
	err := srv.Clientset().CoreV1().ServiceAccounts(ns).Delete(context.Background(), secrets.DefaultServiceAccount, metav1.DeleteOptions{})
	require.True(t, err == nil || apierrors.IsNotFound(err))

	_, _, dyn := jobClients(t, ns)
	env := jobEnv(t, objs, ns)
	require.Equal(t, "serviceaccount", env["OAUTH_MODE"], "the component switches the mode")
	env["TOKEN_WAIT_TIMEOUT"] = "20s"

	var mu sync.Mutex
	token := randomToken(t)
	current := func() string { mu.Lock(); defer mu.Unlock(); return token }
	stop := simulateTokenController(t, ns, secrets.DefaultTokenSecret, current)
	defer stop()

	r := runJob(t, env, dyn)
	require.NoError(t, r.err, r.logs)
	assert.Equal(t, "secrets: created postgres-secret(6 keys), created litellm-secret(3 keys), created backend-secret(6 keys); "+
		"serviceaccount litemaas-oauth serviceaccount created, token secret created, OAUTH_CLIENT_SECRET set from token\n", r.out)
	checkShapes(t, ns)
	be := getSecret(t, ns, secrets.BackendSecret)
	equalSecret(t, token, string(be.Data["OAUTH_CLIENT_SECRET"]), "OAUTH_CLIENT_SECRET == token")
	sa, err := srv.Clientset().CoreV1().ServiceAccounts(ns).Get(context.Background(), secrets.DefaultServiceAccount, metav1.GetOptions{})
	require.NoError(t, err)
	assert.JSONEq(t, `{"kind":"OAuthRedirectReference","apiVersion":"v1","reference":{"kind":"Route","name":"litemaas"}}`,
		sa.Annotations["serviceaccounts.openshift.io/oauth-redirectreference.litemaas"])
	tok := getSecret(t, ns, secrets.DefaultTokenSecret)
	assert.Equal(t, corev1.SecretTypeServiceAccountToken, tok.Type)
	assert.Equal(t, secrets.DefaultServiceAccount, tok.Annotations[corev1.ServiceAccountNameKey])

	// Second run: nothing to do.
	before := versions(t, ns)
	r2 := runJob(t, env, dyn)
	require.NoError(t, r2.err, r2.logs)
	assert.Equal(t, "secrets: unchanged postgres-secret, unchanged litellm-secret, unchanged backend-secret; serviceaccount litemaas-oauth unchanged\n", r2.out)
	assert.Equal(t, before, versions(t, ns))

	// A new token (the ServiceAccount was re-created, the token controller re-issued it): here
	// "never overwrite" yields, OAUTH_CLIENT_SECRET must be the token.
	old := token
	mu.Lock()
	token = randomToken(t)
	mu.Unlock()
	require.Eventually(t, func() bool {
		return string(getSecret(t, ns, secrets.DefaultTokenSecret).Data["token"]) == current()
	}, 10*time.Second, 50*time.Millisecond)
	r3 := runJob(t, env, dyn)
	require.NoError(t, r3.err, r3.logs)
	assert.Equal(t, "secrets: unchanged postgres-secret, unchanged litellm-secret, updated backend-secret(OAUTH_CLIENT_SECRET replaced); "+
		"serviceaccount litemaas-oauth OAUTH_CLIENT_SECRET set from token\n", r3.out)
	equalSecret(t, current(), string(getSecret(t, ns, secrets.BackendSecret).Data["OAUTH_CLIENT_SECRET"]), "OAUTH_CLIENT_SECRET == new token")
	assert.Contains(t, r3.logs, "replacing it with the token")

	assertNoSecretValues(t, ns, []string{old}, r.out, r.logs, r2.out, r2.logs, r3.out, r3.logs)
}

func TestServiceAccountModeWithoutTokenController(t *testing.T) {
	ns := srv.CreateNamespace(t, "sa-no-token")
	env := map[string]string{"NAMESPACE": ns, "OAUTH_MODE": "serviceaccount", "TOKEN_WAIT_TIMEOUT": "1s"}
	r := runJob(t, env, srv.Dynamic())
	require.Error(t, r.err)
	assert.Equal(t, job.ExitTimeout, job.Code(r.err))
	assert.ErrorIs(t, r.err, secrets.ErrTokenTimeout)
	assert.Contains(t, r.err.Error(), "got no token within 1s")
	// Everything else was written, so that PostgreSQL and LiteLLM can start; OAUTH_CLIENT_SECRET
	// follows on the next sync.
	assert.Equal(t, "secrets: created postgres-secret(6 keys), created litellm-secret(3 keys), created backend-secret(5 keys); "+
		"serviceaccount litemaas-oauth NOT set\n", r.out)
	_, has := getSecret(t, ns, secrets.BackendSecret).Data["OAUTH_CLIENT_SECRET"]
	assert.False(t, has)

	// The token arrives; the next run fills it in.
	token := randomToken(t)
	stop := simulateTokenController(t, ns, secrets.DefaultTokenSecret, func() string { return token })
	defer stop()
	env["TOKEN_WAIT_TIMEOUT"] = "20s"
	r2 := runJob(t, env, srv.Dynamic())
	require.NoError(t, r2.err, r2.logs)
	assert.Equal(t, "secrets: unchanged postgres-secret, unchanged litellm-secret, filled backend-secret(1 key); "+
		"serviceaccount litemaas-oauth OAUTH_CLIENT_SECRET set from token\n", r2.out)
	equalSecret(t, token, string(getSecret(t, ns, secrets.BackendSecret).Data["OAUTH_CLIENT_SECRET"]), "OAUTH_CLIENT_SECRET == token")
	assertNoSecretValues(t, ns, nil, r.out, r.logs, r2.out, r2.logs, r.err.Error())
}

func TestServiceAccountModeRefusesForeignTokenSecret(t *testing.T) {
	ns := srv.CreateNamespace(t, "sa-foreign")
	cs := srv.Clientset()
	_, err := cs.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secrets.DefaultTokenSecret, Annotations: map[string]string{corev1.ServiceAccountNameKey: "default"}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	before := versions(t, ns)
	r := runJob(t, map[string]string{"NAMESPACE": ns, "OAUTH_MODE": "serviceaccount"}, srv.Dynamic())
	require.Error(t, r.err)
	assert.Equal(t, job.ExitInvalid, job.Code(r.err))
	assert.Contains(t, r.err.Error(), "litemaas-oauth-token: is not a kubernetes.io/service-account-token Secret of ServiceAccount litemaas-oauth")
	assert.Equal(t, before, versions(t, ns))
	_, err = cs.CoreV1().ServiceAccounts(ns).Get(context.Background(), secrets.DefaultServiceAccount, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "no ServiceAccount created either")
}

// TestAdmissionPolicy: RBAC alone lets the job's ServiceAccount create a Secret of any name (and a
// token Secret for any ServiceAccount); the ValidatingAdmissionPolicy of gitops/cluster-rbac closes
// that without getting in the job's way.
func TestAdmissionPolicy(t *testing.T) {
	ctx := context.Background()
	ns := srv.CreateNamespace(t, "vap")
	objs := render(t, saModeDir, ns) // the widest Role: serviceaccount mode may also create ServiceAccounts
	srv.Apply(t, pick(objs, "ServiceAccount", "Role", "RoleBinding")...)
	_, kc, dyn := jobClients(t, ns)
	core := kc.CoreV1()

	tokenFor := func(name, sa string) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{corev1.ServiceAccountNameKey: sa}},
			Type:       corev1.SecretTypeServiceAccountToken,
		}
	}
	// The policy is cluster-wide: remove it when done, so that it cannot leak into a later run.
	policy := pick(render(t, clusterRBACDir, ns), "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
	require.Len(t, policy, 2)
	t.Cleanup(func() {
		adm := srv.Clientset().AdmissionregistrationV1()
		_ = adm.ValidatingAdmissionPolicyBindings().Delete(ctx, "litemaas-secrets-job", metav1.DeleteOptions{})
		_ = adm.ValidatingAdmissionPolicies().Delete(ctx, "litemaas-secrets-job", metav1.DeleteOptions{})
	})

	// Without the policy: the gap RBAC cannot close. (A policy removed by an earlier run of this test
	// takes a moment to be unloaded, hence the wait.)
	require.Eventually(t, func() bool {
		_, err := core.Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{GenerateName: "gap-any-name-"}}, metav1.CreateOptions{})
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "RBAC ignores resourceNames for create: any name is admitted")
	_, err := core.Secrets(ns).Create(ctx, tokenFor("gap-token", "default"), metav1.CreateOptions{})
	require.NoError(t, err, "RBAC alone lets the job mint a token Secret for another ServiceAccount")

	srv.Apply(t, policy...)

	denied := func(what string, obj *corev1.Secret) {
		t.Helper()
		_, err := core.Secrets(ns).Create(ctx, obj, metav1.CreateOptions{})
		require.Error(t, err, "%s: admitted", what)
		assert.True(t, apierrors.IsForbidden(err) || apierrors.IsInvalid(err), "%s: %v", what, err)
		assert.Contains(t, err.Error(), "litemaas-secrets-job", "%s: denied by the policy", what)
	}
	// The policy is loaded asynchronously: wait until it denies.
	require.Eventually(t, func() bool {
		_, err := core.Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"}}, metav1.CreateOptions{})
		return err != nil && strings.Contains(err.Error(), "litemaas-secrets-job")
	}, 30*time.Second, 100*time.Millisecond, "the admission policy never took effect")

	denied("another name", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "not-in-the-contract"}})
	denied("a token Secret for another ServiceAccount", tokenFor(secrets.DefaultTokenSecret, "default"))
	denied("a contract name with another type", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secrets.PostgresSecret}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}})
	_, err = core.ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "other-sa"}}, metav1.CreateOptions{})
	require.Error(t, err, "another ServiceAccount admitted")
	assert.Contains(t, err.Error(), "litemaas-secrets-job")

	// Others are not matched: an admin still creates what it wants.
	_, err = srv.Clientset().CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "admin-made"}}, metav1.CreateOptions{})
	require.NoError(t, err)

	// And the job itself still works under the policy, as its ServiceAccount.
	env := jobEnv(t, objs, ns)
	env["TOKEN_WAIT_TIMEOUT"] = "20s"
	token := randomToken(t)
	stop := simulateTokenController(t, ns, secrets.DefaultTokenSecret, func() string { return token })
	defer stop()
	_ = srv.Clientset().CoreV1().ServiceAccounts(ns).Delete(ctx, secrets.DefaultServiceAccount, metav1.DeleteOptions{})
	r := runJob(t, env, dyn)
	require.NoError(t, r.err, r.logs)
	checkShapes(t, ns)
	equalSecret(t, token, string(getSecret(t, ns, secrets.BackendSecret).Data["OAUTH_CLIENT_SECRET"]), "OAUTH_CLIENT_SECRET == token")
	assertNoSecretValues(t, ns, nil, r.out, r.logs)
}

// TestJobManifest checks the parts of gitops/base/secrets-job the program relies on.
func TestJobManifest(t *testing.T) {
	objs := render(t, secretsJobDir, "litemaas")
	wave := func(kind, name string) string {
		o := manifests.Find(objs, kind, name)
		require.NotNil(t, o, "%s/%s", kind, name)
		a := o.GetAnnotations()
		assert.Equal(t, "PreSync", a["argocd.argoproj.io/hook"], "%s/%s", kind, name)
		assert.Equal(t, "BeforeHookCreation", a["argocd.argoproj.io/hook-delete-policy"], "%s/%s", kind, name)
		return a["argocd.argoproj.io/sync-wave"]
	}
	for _, kind := range []string{"ServiceAccount", "Role", "RoleBinding"} {
		assert.Equal(t, "-2", wave(kind, jobSA), "%s before the Job", kind)
	}
	assert.Equal(t, "-1", wave("Job", jobSA))

	j := manifests.Find(objs, "Job", jobSA)
	spec := func(path ...string) any {
		v, _, err := unstructured.NestedFieldNoCopy(j.Object, path...)
		require.NoError(t, err)
		return v
	}
	assert.EqualValues(t, 300, spec("spec", "activeDeadlineSeconds"))
	assert.EqualValues(t, 0, spec("spec", "backoffLimit"), "one attempt per sync: the deadline bounds the whole Job")
	assert.Equal(t, "Never", spec("spec", "template", "spec", "restartPolicy"))
	assert.Equal(t, jobSA, spec("spec", "template", "spec", "serviceAccountName"))
	assert.NotContains(t, spec("spec", "template", "metadata", "labels"), "app.kubernetes.io/part-of")

	c := spec("spec", "template", "spec", "containers").([]any)[0].(map[string]any)
	assert.Equal(t, []any{"secrets"}, c["args"])
	assert.Equal(t, "FallbackToLogsOnError", c["terminationMessagePolicy"])
	sc := c["securityContext"].(map[string]any)
	assert.Equal(t, false, sc["allowPrivilegeEscalation"])
	assert.Equal(t, true, sc["readOnlyRootFilesystem"])
	assert.NotContains(t, sc, "runAsUser")
	assert.NotContains(t, spec("spec", "template", "spec", "securityContext"), "runAsUser")

	rules := spec("spec", "podFailurePolicy", "rules").([]any)
	var failOn2 bool
	for _, r := range rules {
		m := r.(map[string]any)
		if m["action"] == "FailJob" {
			codes := m["onExitCodes"].(map[string]any)
			failOn2 = codes["containerName"] == c["name"] && slices.Contains(codes["values"].([]any), any(int64(job.ExitInvalid)))
		}
	}
	assert.True(t, failOn2, "podFailurePolicy fails the Job on exit code %d of its container", job.ExitInvalid)

	// The Role's secret names are exactly the names the program writes.
	role := manifests.Find(objs, "Role", jobSA)
	var names []string
	ruleList, _, _ := unstructured.NestedSlice(role.Object, "rules")
	for _, r := range ruleList {
		m := r.(map[string]any)
		if slices.Contains(m["resources"].([]any), any("secrets")) && m["resourceNames"] != nil {
			for _, n := range m["resourceNames"].([]any) {
				names = append(names, n.(string))
			}
		}
	}
	var want []string
	for _, sc := range secrets.Contract {
		want = append(want, sc.Name)
	}
	want = append(want, secrets.DefaultTokenSecret)
	assert.ElementsMatch(t, want, names)
}

// An install from before the per-component roles: postgres-secret with the superuser only, every URL
// the superuser's. One run adds the role passwords and moves exactly the three URLs to their roles;
// the second run changes nothing.
func TestSingleSuperuserInstallMovesToRoles(t *testing.T) {
	ns := srv.CreateNamespace(t, "upgrade")
	oc := "oc-" + ns
	createOAuthClient(t, oc, callbackURL)
	const password = "OldSuperuserPassword0123456789ab"
	legacy := func(db string) string { return "postgresql://litemaas_admin:" + password + "@postgres:5432/" + db }
	createSecret(t, ns, secrets.PostgresSecret, "POSTGRES_USER", "litemaas_admin", "POSTGRES_PASSWORD", password)
	createSecret(t, ns, secrets.LiteLLMSecret, "LITELLM_MASTER_KEY", "sk-ExistingMasterKeyExistingMaster01",
		"LITELLM_SALT_KEY", "ExistingSaltKeyExistingSaltKey0123", "DATABASE_URL", legacy("litellm_db"))
	createSecret(t, ns, secrets.BackendSecret, "DATABASE_URL", legacy("litemaas_db?sslmode=disable"), "JWT_SECRET", "ExistingJwtSecretExistingJwtSecret0123456789abcdef",
		"OAUTH_CLIENT_SECRET", "ExistingOAuthSecret0123456789abc", "ADMIN_API_KEYS", "ltm_admin_ExistingAdminKey0123456789abcdefgh",
		"LITELLM_API_KEY", "sk-ExistingMasterKeyExistingMaster01", "LITELLM_DATABASE_URL", legacy("litellm_db"))

	r := adminRun(t, ns, oc)
	require.NoError(t, r.err, r.logs)
	assert.Equal(t, "secrets: filled postgres-secret(4 keys), updated litellm-secret(DATABASE_URL replaced), "+
		"updated backend-secret(DATABASE_URL+LITELLM_DATABASE_URL replaced); oauthclient "+oc+" secret set\n", r.out)
	checkShapes(t, ns)
	pg := getSecret(t, ns, secrets.PostgresSecret)
	assert.Equal(t, password, string(pg.Data["POSTGRES_PASSWORD"]), "the superuser keeps its password")
	assert.Equal(t, "ExistingSaltKeyExistingSaltKey0123", string(getSecret(t, ns, secrets.LiteLLMSecret).Data["LITELLM_SALT_KEY"]))
	assertNoSecretValues(t, ns, []string{password}, r.out, r.logs)

	before := versions(t, ns)
	r2 := adminRun(t, ns, oc)
	require.NoError(t, r2.err)
	assert.Equal(t, before, versions(t, ns), "the second run writes nothing")
}
