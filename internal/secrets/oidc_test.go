package secrets_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/litemaas-gitops/litemaas-gitops/internal/job"
	"github.com/litemaas-gitops/litemaas-gitops/internal/secrets"
)

const oidcModeDir = "testdata/oidc-mode"

// removeOAuthClients deletes every OAuthClient (the tests that need one create their own), so that
// an OIDC run is seen to need none.
func removeOAuthClients(t *testing.T) {
	t.Helper()
	installOAuthClientCRD(t)
	ri := srv.Dynamic().Resource(secrets.OAuthClientResource)
	list, err := ri.List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	for _, oc := range list.Items {
		require.NoError(t, ri.Delete(context.Background(), oc.GetName(), metav1.DeleteOptions{}))
	}
}

// oidcJob prepares a namespace with the RBAC an overlay using the component oidc renders (and not the
// cluster part: the job has no right on any OAuthClient) and returns the Job's own environment and
// clients authenticated as its ServiceAccount.
func oidcJob(t *testing.T, name string) (string, map[string]string, func() run) {
	t.Helper()
	ns := srv.CreateNamespace(t, name)
	objs := render(t, oidcModeDir, ns)
	srv.Apply(t, pick(objs, "ServiceAccount", "Role", "RoleBinding")...)
	_, _, dyn := jobClients(t, ns)
	env := jobEnv(t, objs, ns)
	require.Equal(t, "oidc", env["OAUTH_MODE"], "the component switches the mode")
	require.Equal(t, secrets.DefaultOIDCClientSecret, env["OIDC_CLIENT_SECRET_NAME"])
	return ns, env, func() run { return runJob(t, env, dyn) }
}

func TestOIDCMode(t *testing.T) {
	removeOAuthClients(t)
	ns, _, runOnce := oidcJob(t, "oidc-mode")
	clientSecret := randomToken(t)
	createSecret(t, ns, secrets.DefaultOIDCClientSecret, secrets.KeyOIDCClientID, "litemaas-portal", secrets.KeyOIDCClientSecret, clientSecret)

	r := runOnce()
	require.NoError(t, r.err, r.logs)
	assert.Equal(t, job.ExitOK, job.Code(r.err))
	assert.Equal(t, "secrets: created postgres-secret(6 keys), created litellm-secret(3 keys), created backend-secret(7 keys); "+
		"oidc oidc-client OAUTH_CLIENT_ID copied, OAUTH_CLIENT_SECRET copied\n", r.out)
	checkShapes(t, ns)
	be := getSecret(t, ns, secrets.BackendSecret)
	assert.Equal(t, "litemaas-portal", string(be.Data[secrets.KeyOAuthClientID]))
	equalSecret(t, clientSecret, string(be.Data[secrets.KeyOAuthClientSecret]), "OAUTH_CLIENT_SECRET == oidc-client/clientSecret")
	user := getSecret(t, ns, secrets.DefaultOIDCClientSecret)
	assert.Empty(t, user.Annotations, "the user's Secret is only read")

	list, err := srv.Dynamic().Resource(secrets.OAuthClientResource).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, list.Items, "no OAuthClient exists, none was needed")

	// Second run: nothing to do.
	before := versions(t, ns)
	r2 := runOnce()
	require.NoError(t, r2.err, r2.logs)
	assert.Equal(t, "secrets: unchanged postgres-secret, unchanged litellm-secret, unchanged backend-secret; oidc oidc-client unchanged\n", r2.out)
	assert.Equal(t, before, versions(t, ns))

	// The client secret rotated at the provider and in the user's Secret: it reaches backend-secret.
	rotated := randomToken(t)
	user.Data[secrets.KeyOIDCClientSecret] = []byte(rotated)
	_, err = srv.Clientset().CoreV1().Secrets(ns).Update(context.Background(), user, metav1.UpdateOptions{})
	require.NoError(t, err)
	r3 := runOnce()
	require.NoError(t, r3.err, r3.logs)
	assert.Equal(t, "secrets: unchanged postgres-secret, unchanged litellm-secret, updated backend-secret(OAUTH_CLIENT_SECRET replaced); "+
		"oidc oidc-client OAUTH_CLIENT_SECRET copied\n", r3.out)
	equalSecret(t, rotated, string(getSecret(t, ns, secrets.BackendSecret).Data[secrets.KeyOAuthClientSecret]), "OAUTH_CLIENT_SECRET == rotated secret")

	assertNoSecretValues(t, ns, []string{clientSecret}, r.out, r.logs, r2.out, r2.logs, r3.out, r3.logs)
}

func TestOIDCModeWithoutClientSecretExits2(t *testing.T) {
	tests := []struct {
		name string
		// kv: the user's Secret's data; nil: no Secret at all.
		kv   []string
		want []string
	}{
		{"no Secret", nil, []string{"oidc-client/clientID: is missing: the Secret does not exist", "oidc-client/clientSecret: is missing: the Secret does not exist"}},
		{"no clientSecret", []string{secrets.KeyOIDCClientID, "litemaas-portal"}, []string{"oidc-client/clientSecret: is missing"}},
		{"clientID with a newline", []string{secrets.KeyOIDCClientID, "litemaas-portal\n", secrets.KeyOIDCClientSecret, "S3cretValueOfTheClient"}, []string{"oidc-client/clientID: has leading or trailing whitespace"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, _, runOnce := oidcJob(t, "oidc-missing")
			if tt.kv != nil {
				createSecret(t, ns, secrets.DefaultOIDCClientSecret, tt.kv...)
			}
			before := versions(t, ns)
			r := runOnce()
			require.Error(t, r.err)
			assert.Equal(t, job.ExitInvalid, job.Code(r.err), r.err.Error())
			var oerr *secrets.OIDCClientError
			require.ErrorAs(t, r.err, &oerr)
			require.Len(t, oerr.Problems, len(tt.want))
			for _, w := range tt.want {
				assert.Contains(t, r.err.Error(), w)
			}
			assert.Contains(t, r.err.Error(), "oc create secret generic oidc-client -n "+ns)
			assert.Equal(t, before, versions(t, ns), "nothing was written")
			_, err := srv.Clientset().CoreV1().Secrets(ns).Get(context.Background(), secrets.BackendSecret, metav1.GetOptions{})
			assert.True(t, apierrors.IsNotFound(err), "backend-secret not created")
			assertNoSecretValues(t, ns, []string{"S3cretValueOfTheClient"}, r.out, r.logs, r.err.Error())
		})
	}
}
