package manifests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// The hardening checks of hardening.go over every overlay, and the cases that must break them.

// settingValue reads one key of an overlay's cluster-settings file ("" when absent).
func settingValue(t *testing.T, settingsFile, key string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), settingsFile))
	require.NoError(t, err)
	var cm struct {
		Data map[string]string `json:"data"`
	}
	require.NoError(t, yaml.Unmarshal(data, &cm), settingsFile)
	return cm.Data[key]
}

func TestHardening(t *testing.T) {
	for _, dir := range liteMaaSOverlays(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			objs := rendered(t, dir)
			report(t, "HSTS", checkHSTS(objs))
			report(t, "service account tokens", checkServiceAccountTokens(objs))
			report(t, "read-only root", checkReadOnlyRoot(objs))
			report(t, "login TLS", checkLoginTLS(objs))
			report(t, "TLS verification", checkTLSVerification(objs))
		})
	}
}

// The optional knobs do what they say where an overlay uses them.
func TestRouteKnobs(t *testing.T) {
	const dir = "gitops/overlays/example-restricted"
	objs := rendered(t, dir)
	settings := dir + "/settings/cluster-settings.yaml"
	allow := settingValue(t, settings, "ipAllowlist")
	require.NotEmpty(t, allow)
	routes := 0
	for _, o := range objs {
		if o.GetKind() == "Route" {
			routes++
			assert.Equal(t, allow, o.GetAnnotations()["haproxy.router.openshift.io/ip_allowlist"], ref(o))
		}
	}
	assert.Equal(t, 2, routes, "the UI and LiteLLM Routes, no backend Route")
	assert.Nil(t, Find(objs, "Route", "litemaas-api"))
	assert.Nil(t, Find(objs, "NetworkPolicy", "backend-from-router"))
	issuer, _ := envValue(Find(objs, "Deployment", "backend"), "backend", "OAUTH_ISSUER")
	assert.Equal(t, settingValue(t, settings, "oauthIssuer"), issuer)

	// Without the components: no allowlist, the backend Route, the derived issuer.
	def := rendered(t, "gitops/overlays/example")
	for _, o := range def {
		if o.GetKind() == "Route" {
			assert.NotContains(t, o.GetAnnotations(), "haproxy.router.openshift.io/ip_allowlist", ref(o))
		}
	}
	assert.NotNil(t, Find(def, "Route", "litemaas-api"))
	issuer, _ = envValue(Find(def, "Deployment", "backend"), "backend", "OAUTH_ISSUER")
	assert.Equal(t, "https://oauth-openshift."+appsDomain(t, "gitops/overlays/example/settings/cluster-settings.yaml"), issuer)
}

func TestHardeningChecksRejectBrokenObjects(t *testing.T) {
	type breaker func(t *testing.T, o []*unstructured.Unstructured)
	tests := []struct {
		name    string
		overlay string
		check   func([]*unstructured.Unstructured) []string
		breakIt breaker
		want    string
	}{
		{"no HSTS", "gitops/overlays/example", checkHSTS, func(t *testing.T, o []*unstructured.Unstructured) {
			unstructured.RemoveNestedField(mustFind(t, o, "Route", "litellm").Object, "metadata", "annotations", annotationHSTS)
		}, "Route/litellm: annotation"},
		{"HSTS for a day", "gitops/overlays/example", checkHSTS, func(t *testing.T, o []*unstructured.Unstructured) {
			set(t, mustFind(t, o, "Route", "litemaas").Object, "max-age=86400", "metadata", "annotations", annotationHSTS)
		}, "max-age 86400 is less than a year"},
		{"backend with a token", "gitops/overlays/example", checkServiceAccountTokens, func(t *testing.T, o []*unstructured.Unstructured) {
			unstructured.RemoveNestedField(mustFind(t, o, "Deployment", "backend").Object, "spec", "template", "spec", "automountServiceAccountToken")
		}, "Deployment/backend: automountServiceAccountToken is not false"},
		{"backup with a token", "gitops/overlays/example-with-options", checkServiceAccountTokens, func(t *testing.T, o []*unstructured.Unstructured) {
			set(t, mustFind(t, o, "CronJob", "postgres-backup").Object, true, "spec", "jobTemplate", "spec", "template", "spec", "automountServiceAccountToken")
		}, "CronJob/postgres-backup"},
		{"postgres writable", "gitops/overlays/example", checkReadOnlyRoot, func(t *testing.T, o []*unstructured.Unstructured) {
			set(t, containerOf(t, o, "StatefulSet", "postgres", "postgres"), false, "securityContext", "readOnlyRootFilesystem")
		}, "StatefulSet/postgres container postgres: readOnlyRootFilesystem is not true"},
		{"stale exception", "gitops/overlays/example", checkReadOnlyRoot, func(t *testing.T, o []*unstructured.Unstructured) {
			set(t, containerOf(t, o, "Deployment", "frontend", "frontend"), true, "securityContext", "readOnlyRootFilesystem")
		}, "remove it from writableRoot"},
		{"API URL derived from the issuer", "gitops/overlays/example", checkLoginTLS, func(t *testing.T, o []*unstructured.Unstructured) {
			setEnv(t, o, "Deployment", "backend", "backend", "OPENSHIFT_API_URL", "https://api.cluster.example.com:6443")
		}, "OPENSHIFT_API_URL"},
		{"no CA file", "gitops/overlays/example", checkLoginTLS, func(t *testing.T, o []*unstructured.Unstructured) {
			c := containerOf(t, o, "Deployment", "backend", "backend")
			c["env"] = slices.DeleteFunc(listAt(c, "env"), func(e any) bool { return stringAt(e.(map[string]any), "name") == "NODE_EXTRA_CA_CERTS" })
		}, "NODE_EXTRA_CA_CERTS is not a file path"},
		{"CA from another ConfigMap", "gitops/overlays/example", checkLoginTLS, func(t *testing.T, o []*unstructured.Unstructured) {
			for _, v := range maps(listAt(podSpecOf(t, o, "Deployment", "backend"), "volumes")) {
				if stringAt(v, "name") == "kube-api-ca" {
					set(t, v, "openshift-service-ca.crt", "configMap", "name")
				}
			}
		}, "is not the ca.crt of ConfigMap kube-root-ca.crt"},
		{"custom-ca bundle without the API CA", "gitops/overlays/example-with-options", checkLoginTLS, func(t *testing.T, o []*unstructured.Unstructured) {
			for _, ic := range maps(listAt(podSpecOf(t, o, "Deployment", "backend"), "initContainers")) {
				if stringAt(ic, "name") == "join-ca-bundles" {
					ic["command"] = []any{"/bin/sh", "-c", "cat /etc/litemaas/trusted-ca/ca-bundle.crt > /etc/litemaas/ca/ca-bundle.crt"}
				}
			}
		}, "no init container fills from kube-root-ca.crt"},
		{"NODE_TLS_REJECT_UNAUTHORIZED on LiteLLM", "gitops/overlays/example", checkTLSVerification, func(t *testing.T, o []*unstructured.Unstructured) {
			setEnv(t, o, "Deployment", "litellm", "litellm", "NODE_TLS_REJECT_UNAUTHORIZED", "0")
		}, "env NODE_TLS_REJECT_UNAUTHORIZED is set"},
		{"K8S_API_SKIP_TLS_VERIFY on the backend", "gitops/overlays/example", checkTLSVerification, func(t *testing.T, o []*unstructured.Unstructured) {
			setEnv(t, o, "Deployment", "backend", "backend", "K8S_API_SKIP_TLS_VERIFY", "true")
		}, "K8S_API_SKIP_TLS_VERIFY=true"},
		{"verification off in a command line", "gitops/overlays/example", checkTLSVerification, func(t *testing.T, o []*unstructured.Unstructured) {
			ic := maps(listAt(podSpecOf(t, o, "Deployment", "backend"), "initContainers"))[0]
			ic["command"] = []any{"/bin/sh", "-c", "NODE_TLS_REJECT_UNAUTHORIZED=0 node x.js"}
		}, "mentions NODE_TLS_REJECT_UNAUTHORIZED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Empty(t, tt.check(rendered(t, tt.overlay)), "the unbroken overlay passes")
			objs := rendered(t, tt.overlay)
			tt.breakIt(t, objs)
			assert.Contains(t, strings.Join(tt.check(objs), "\n"), tt.want)
		})
	}
}

func TestDatabaseRoles(t *testing.T) {
	for _, dir := range liteMaaSOverlays(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			objs := rendered(t, dir)
			if Find(objs, "Cluster", "litemaas-db") != nil {
				// The production profile: the roles are CloudNativePG's managed roles (checkCNPGCluster).
				assert.Empty(t, checkCNPGCluster(objs))
				return
			}
			report(t, "database roles", checkDatabaseRoles(objs))
		})
	}
	// And it can fail.
	objs := rendered(t, "gitops/overlays/example-with-options")
	c := containerOf(t, objs, "StatefulSet", "postgres", "postgres")
	c["env"] = slices.DeleteFunc(listAt(c, "env"), func(e any) bool { return stringAt(e.(map[string]any), "name") == "LITEMAAS_BACKUP_PASSWORD" })
	set(t, mustFind(t, objs, "CronJob", "postgres-backup").Object, []any{map[string]any{"name": "backup", "env": []any{map[string]any{"name": "PGUSER", "value": "litemaas_admin"}}}},
		"spec", "jobTemplate", "spec", "template", "spec", "containers")
	ic := maps(listAt(podSpecOf(t, objs, "Deployment", "litellm"), "initContainers"))[0]
	ic["command"] = []any{"/bin/sh", "-c", "until pg_isready -h postgres; do sleep 2; done"}
	got := strings.Join(checkDatabaseRoles(objs), "\n")
	for _, want := range []string{"reads LITEMAAS_BACKUP_PASSWORD", "PGUSER \"litemaas_admin\"", "Deployment/litellm: init container"} {
		assert.Contains(t, got, want)
	}
}
