package wiring

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// discoveryServer is a stand-in OpenID Connect provider over TLS: it serves the fixture (with ISSUER
// replaced by its own URL, plus suffix) at the discovery path, and 404 elsewhere.
func discoveryServer(t *testing.T, fixture, suffix string) *httptest.Server {
	t.Helper()
	var body []byte
	if fixture != "" {
		var err error
		body, err = os.ReadFile(filepath.Join("testdata", fixture))
		require.NoError(t, err)
	}
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if body == nil || r.URL.Path != suffix+DiscoveryPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(strings.ReplaceAll(string(body), "ISSUER", srv.URL+suffix)))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestCheckOIDCIssuer(t *testing.T) {
	closed := httptest.NewTLSServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name    string
		fixture string
		// issuer builds OAUTH_ISSUER from the server's URL.
		issuer func(srvURL string) string
		want   []string
	}{
		{"good", "discovery-good.json", func(u string) string { return u + "/realms/litemaas" }, nil},
		{"trailing slash is stripped as the backend does", "discovery-good.json", func(u string) string { return u + "/realms/litemaas/" }, nil},
		{"unreachable", "discovery-good.json", func(string) string { return closedURL + "/realms/litemaas" }, []string{"is unreachable from the cluster"}},
		{"wrong issuer", "discovery-wrong-issuer.json", func(u string) string { return u + "/realms/litemaas" }, []string{`the discovery document states issuer "https://127.0.0.1`, "/realms/litemaas/realms/other"}},
		{"wrong realm: no document", "discovery-good.json", func(u string) string { return u + "/realms/typo" }, []string{"answered 404 Not Found"}},
		{"plain http endpoint", "discovery-http-endpoint.json", func(u string) string { return u + "/realms/litemaas" }, []string{`token_endpoint "http://keycloak.internal:8080/protocol/openid-connect/token" is not an https URL`}},
		{"issuer not https", "discovery-good.json", func(string) string { return "http://keycloak.example.com/realms/litemaas" }, []string{"is not an https issuer URL"}},
		{"issuer empty", "discovery-good.json", func(string) string { return "" }, []string{"is not an https issuer URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := discoveryServer(t, tt.fixture, "/realms/litemaas")
			got := CheckOIDCIssuer(context.Background(), srv.Client(), "backend", tt.issuer(srv.URL))
			if tt.want == nil {
				assert.Empty(t, got)
				return
			}
			require.Len(t, got, 1, got)
			assert.Contains(t, got[0], "deployment/backend OAUTH_ISSUER")
			for _, w := range tt.want {
				assert.Contains(t, got[0], w)
			}
		})
	}
}

// A provider whose certificate the job does not trust is as unreachable as a closed port: the job
// says so, instead of skipping the check.
func TestCheckOIDCIssuerUntrustedCertificate(t *testing.T) {
	srv := discoveryServer(t, "discovery-good.json", "/realms/litemaas")
	got := CheckOIDCIssuer(context.Background(), &http.Client{}, "backend", srv.URL+"/realms/litemaas")
	require.Len(t, got, 1)
	assert.Contains(t, got[0], "unreachable")
	assert.Contains(t, got[0], "certificate")
}

// Through Cluster.Check: only with AUTH_PROVIDER=oidc, and the callback still must match Route
// litemaas, now registered at the provider.
func TestClusterCheckOIDC(t *testing.T) {
	srv := discoveryServer(t, "discovery-good.json", "/realms/litemaas")
	base := map[string]string{
		"LITELLM_API_URL":    "https://litellm-litemaas.apps.example.com",
		"OAUTH_CALLBACK_URL": "https://litemaas-litemaas.apps.example.com/api/auth/callback",
		"CORS_ORIGIN":        "https://litemaas-litemaas.apps.example.com",
	}
	tests := []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"oidc, all agree", map[string]string{"AUTH_PROVIDER": "oidc", "OAUTH_ISSUER": srv.URL + "/realms/litemaas"}, nil},
		{"openshift: the issuer is not fetched", map[string]string{"OAUTH_ISSUER": "https://oauth-openshift.apps.example.com"}, nil},
		{"oidc, wrong issuer and callback on another host", map[string]string{"AUTH_PROVIDER": "oidc", "OAUTH_ISSUER": srv.URL + "/realms/other",
			"OAUTH_CALLBACK_URL": "https://other.example.com/api/auth/callback"},
			[]string{"answered 404", "OAUTH_CALLBACK_URL is \"https://other.example.com/api/auth/callback\", want \"https://litemaas-litemaas.apps.example.com/api/auth/callback\" (the frontend route's host): the OpenID Connect provider"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.set {
				env[k] = v
			}
			c := cluster(t, backend(env), true, route("litellm", "litellm-litemaas.apps.example.com"), route("litemaas", ""))
			c.HTTPClient = srv.Client()
			problems, skipped, err := c.Check(context.Background())
			require.NoError(t, err)
			assert.Empty(t, skipped)
			require.Len(t, problems, len(tt.want), problems)
			for i, w := range tt.want {
				assert.Contains(t, problems[i], w)
			}
		})
	}
}
