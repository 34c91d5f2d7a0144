package wiring

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// brokenCase is manifeststest.BrokenCase, declared here so that the table lists its fields in order.
type brokenCase struct {
	Name  string
	Check func(t *testing.T, objs []*unstructured.Unstructured) []string
	Break func(t *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured
	Want  string // a substring of one reported problem
}

// Each rule must be able to fail: every case below breaks one thing in an otherwise good rendering of
// the sample overlay and asserts that the rule reports it (and that the unbroken rendering passes it).
func TestRulesRejectBrokenObjects(t *testing.T) {
	sample := manifeststest.SampleOverlay(t)
	domain := manifeststest.AppsDomain(t, sample.Settings)
	domainCheck := func(t *testing.T, objs []*unstructured.Unstructured) []string {
		return CheckDomainWiring(objs, manifeststest.Rendered(t, sample.Cluster), domain)
	}
	manifeststest.RunBrokenCases(t, manifeststest.SampleOverlay(t).Dir, []brokenCase{
		{"secretKeyRef outside the contract", manifeststest.Plain(CheckSecretRefs), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			c := manifeststest.ContainerOf(t, o, "Deployment", "backend", "backend")
			c["env"] = append(objects.ListAt(c, "env"), map[string]any{"name": "X", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "backend-secret", "key": "jwt-secret"}}})
			return o
		}, "not in the Secret contract"},

		// the apps domain
		{"internal LITELLM_API_URL", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "LITELLM_API_URL", "http://litellm:4000")
			return o
		}, "LITELLM_API_URL"},
		{"callback on another host", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "OAUTH_CALLBACK_URL", "https://litemaas-api-litemaas."+domain+"/api/auth/callback")
			return o
		}, "OAUTH_CALLBACK_URL"},
		{"CORS origin with a trailing slash", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "CORS_ORIGIN", "https://litemaas-litemaas."+domain+"/")
			return o
		}, "CORS_ORIGIN"},
		{"issuer with a trailing slash", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "OAUTH_ISSUER", "https://oauth-openshift."+domain+"/")
			return o
		}, "OAUTH_ISSUER"},
		{"ServiceAccount OAuth client without its ServiceAccount", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "OAUTH_CLIENT_ID", "system:serviceaccount:litemaas:litemaas-oauth")
			return o
		}, "no such ServiceAccount"},
		{"ServiceAccount OAuth client without a redirect reference", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "OAUTH_CLIENT_ID", "system:serviceaccount:litemaas:"+objects.SyncJobName)
			return o
		}, "oauth-redirectreference"},
		{"route host off the runbook's URL", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "Route", "litellm").Object, "llm."+domain, "spec", "host")
			return o
		}, "Route/litellm"},
		{"route without TLS redirect", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "Route", "litemaas").Object, "Allow", "spec", "tls", "insecureEdgeTerminationPolicy")
			return o
		}, "insecureEdgeTerminationPolicy"},
		{"placeholder left", domainCheck, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			cm := manifeststest.MustFind(t, o, "ConfigMap", "postgres-initdb")
			manifeststest.Set(t, cm.Object, "https://x."+objects.Placeholder, "data", "note")
			return o
		}, "placeholder"},

		// component settings
		{"two backend replicas", manifeststest.Plain(CheckComponentSettings), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "Deployment", "backend").Object, int64(2), "spec", "replicas")
			return o
		}, "replicas"},
		{"NODE_ENV development", manifeststest.Plain(CheckComponentSettings), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "NODE_ENV", "development")
			return o
		}, "NODE_ENV"},
		{"unknown OAuth client id", manifeststest.Plain(CheckComponentSettings), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "OAUTH_CLIENT_ID", "litemaas")
			return o
		}, "OAUTH_CLIENT_ID"},
		{"TLS checks off", manifeststest.Plain(CheckComponentSettings), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "NODE_TLS_REJECT_UNAUTHORIZED", "0")
			return o
		}, "NODE_TLS_REJECT_UNAUTHORIZED"},
		{"LiteLLM without its database", manifeststest.Plain(CheckComponentSettings), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "litellm", "litellm", "DATABASE_URL", "")
			return o
		}, "DATABASE_URL"},

		// the catalog
		{"catalog with a duplicate id", manifeststest.Plain(CheckCatalog), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			cm := objects.ModelsConfigMap(o)
			s := objects.StringAt(cm.Object, "data", objects.ModelsConfigMapDataKey)
			manifeststest.Set(t, cm.Object, s+"  - id: granite-8b-agent\n    name: Again\n    contextLength: 8\n    apiBase: http://x:8080/v1\n", "data", objects.ModelsConfigMapDataKey)
			return o
		}, "field id: duplicate id"},
		{"catalog model without apiBase", manifeststest.Plain(CheckCatalog), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			cm := objects.ModelsConfigMap(o)
			s := objects.StringAt(cm.Object, "data", objects.ModelsConfigMapDataKey)
			manifeststest.Set(t, cm.Object, s+"  - id: llama-3-8b\n    name: Llama 3 8B\n    contextLength: 8192\n", "data", objects.ModelsConfigMapDataKey)
			return o
		}, "model llama-3-8b: field apiBase: required"},
		{"catalog with an inline API key", manifeststest.Plain(CheckCatalog), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			cm := objects.ModelsConfigMap(o)
			s := objects.StringAt(cm.Object, "data", objects.ModelsConfigMapDataKey)
			manifeststest.Set(t, cm.Object, s+"  - id: llama-3-8b\n    name: Llama 3 8B\n    contextLength: 8192\n    apiBase: https://llm.example.com/v1\n    apiKey: sk-123\n", "data", objects.ModelsConfigMapDataKey)
			return o
		}, "inline API keys"},
		{"catalog not YAML", manifeststest.Plain(CheckCatalog), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, objects.ModelsConfigMap(o).Object, "models: [\n", "data", objects.ModelsConfigMapDataKey)
			return o
		}, "not valid YAML"},
		{"catalog missing", manifeststest.Plain(CheckCatalog), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			var kept []*unstructured.Unstructured
			for _, x := range o {
				if x != objects.ModelsConfigMap(o) {
					kept = append(kept, x)
				}
			}
			return kept
		}, "no models catalog"},
	})
}

// An OAuthClient must redirect to exactly the backend's callback and hold no secret.
func TestOAuthClientRejects(t *testing.T) {
	t.Run("OAuthClient redirect URI or secret", func(t *testing.T) {
		sample := manifeststest.SampleOverlay(t)
		domain := manifeststest.AppsDomain(t, sample.Settings)
		app := manifeststest.Rendered(t, sample.Dir)
		cluster := manifeststest.Rendered(t, sample.Cluster)
		if got := CheckDomainWiring(app, cluster, domain); len(got) != 0 {
			t.Fatalf("unbroken rendering fails: %v", got)
		}
		oc := manifeststest.MustFind(t, cluster, "OAuthClient", "litemaas-oauth-client")
		oc.Object["redirectURIs"] = []any{"https://litemaas-litemaas.apps.other.example.com/api/auth/callback"}
		oc.Object["secret"] = "0123456789abcdef"
		got := strings.Join(CheckDomainWiring(app, cluster, domain), "\n")
		for _, want := range []string{"redirectURIs", "secret is set"} {
			if !strings.Contains(got, want) {
				t.Errorf("checkDomainWiring did not report %q: %s", want, got)
			}
		}
	})
}
