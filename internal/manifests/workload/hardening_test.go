package workload

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

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/ha"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// The hardening checks of hardening.go over every overlay, and the cases that must break them.

// settingValue reads one key of an overlay's cluster-settings file ("" when absent).
func settingValue(t *testing.T, settingsFile, key string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(manifeststest.RepoRoot(t), settingsFile))
	require.NoError(t, err)
	var cm struct {
		Data map[string]string `json:"data"`
	}
	require.NoError(t, yaml.Unmarshal(data, &cm), settingsFile)
	return cm.Data[key]
}

func TestHardening(t *testing.T) {
	for _, dir := range manifeststest.LiteMaaSOverlays(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			objs := manifeststest.Rendered(t, dir)
			manifeststest.Report(t, "HSTS", CheckHSTS(objs))
			manifeststest.Report(t, "service account tokens", CheckServiceAccountTokens(objs))
			manifeststest.Report(t, "read-only root", CheckReadOnlyRoot(objs))
			manifeststest.Report(t, "login TLS", CheckLoginTLS(objs))
			manifeststest.Report(t, "TLS verification", CheckTLSVerification(objs))
		})
	}
}

// The optional knobs do what they say where an overlay uses them.
func TestRouteKnobs(t *testing.T) {
	const dir = "gitops/overlays/example-restricted"
	objs := manifeststest.Rendered(t, dir)
	settings := dir + "/settings/cluster-settings.yaml"
	allow := settingValue(t, settings, "ipAllowlist")
	require.NotEmpty(t, allow)
	routes := 0
	for _, o := range objs {
		if o.GetKind() == "Route" {
			routes++
			assert.Equal(t, allow, o.GetAnnotations()["haproxy.router.openshift.io/ip_allowlist"], objects.Ref(o))
		}
	}
	assert.Equal(t, 2, routes, "the UI and LiteLLM Routes, no backend Route")
	assert.Nil(t, objects.Find(objs, "Route", "litemaas-api"))
	assert.Nil(t, objects.Find(objs, "NetworkPolicy", "backend-from-router"))
	issuer, _ := objects.EnvValue(objects.Find(objs, "Deployment", "backend"), "backend", "OAUTH_ISSUER")
	assert.Equal(t, settingValue(t, settings, "oauthIssuer"), issuer)

	// Without the components: no allowlist, the backend Route, the derived issuer.
	def := manifeststest.Rendered(t, "gitops/overlays/example")
	for _, o := range def {
		if o.GetKind() == "Route" {
			assert.NotContains(t, o.GetAnnotations(), "haproxy.router.openshift.io/ip_allowlist", objects.Ref(o))
		}
	}
	assert.NotNil(t, objects.Find(def, "Route", "litemaas-api"))
	issuer, _ = objects.EnvValue(objects.Find(def, "Deployment", "backend"), "backend", "OAUTH_ISSUER")
	assert.Equal(t, "https://oauth-openshift."+manifeststest.AppsDomain(t, "gitops/overlays/example/settings/cluster-settings.yaml"), issuer)
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
		{"no HSTS", "gitops/overlays/example", CheckHSTS, func(t *testing.T, o []*unstructured.Unstructured) {
			unstructured.RemoveNestedField(manifeststest.MustFind(t, o, "Route", "litellm").Object, "metadata", "annotations", AnnotationHSTS)
		}, "Route/litellm: annotation"},
		{"HSTS for a day", "gitops/overlays/example", CheckHSTS, func(t *testing.T, o []*unstructured.Unstructured) {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "Route", "litemaas").Object, "max-age=86400", "metadata", "annotations", AnnotationHSTS)
		}, "max-age 86400 is less than a year"},
		{"backend with a token", "gitops/overlays/example", CheckServiceAccountTokens, func(t *testing.T, o []*unstructured.Unstructured) {
			unstructured.RemoveNestedField(manifeststest.MustFind(t, o, "Deployment", "backend").Object, "spec", "template", "spec", "automountServiceAccountToken")
		}, "Deployment/backend: automountServiceAccountToken is not false"},
		{"backup with a token", "gitops/overlays/example-with-options", CheckServiceAccountTokens, func(t *testing.T, o []*unstructured.Unstructured) {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "CronJob", "postgres-backup").Object, true, "spec", "jobTemplate", "spec", "template", "spec", "automountServiceAccountToken")
		}, "CronJob/postgres-backup"},
		{"postgres writable", "gitops/overlays/example", CheckReadOnlyRoot, func(t *testing.T, o []*unstructured.Unstructured) {
			manifeststest.Set(t, manifeststest.ContainerOf(t, o, "StatefulSet", "postgres", "postgres"), false, "securityContext", "readOnlyRootFilesystem")
		}, "StatefulSet/postgres container postgres: readOnlyRootFilesystem is not true"},
		{"stale exception", "gitops/overlays/example", CheckReadOnlyRoot, func(t *testing.T, o []*unstructured.Unstructured) {
			manifeststest.Set(t, manifeststest.ContainerOf(t, o, "Deployment", "frontend", "frontend"), true, "securityContext", "readOnlyRootFilesystem")
		}, "remove it from writableRoot"},
		{"API URL derived from the issuer", "gitops/overlays/example", CheckLoginTLS, func(t *testing.T, o []*unstructured.Unstructured) {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "OPENSHIFT_API_URL", "https://api.cluster.example.com:6443")
		}, "OPENSHIFT_API_URL"},
		{"no CA file", "gitops/overlays/example", CheckLoginTLS, func(t *testing.T, o []*unstructured.Unstructured) {
			c := manifeststest.ContainerOf(t, o, "Deployment", "backend", "backend")
			c["env"] = slices.DeleteFunc(objects.ListAt(c, "env"), func(e any) bool { return objects.StringAt(e.(map[string]any), "name") == "NODE_EXTRA_CA_CERTS" })
		}, "NODE_EXTRA_CA_CERTS is not a file path"},
		{"CA from another ConfigMap", "gitops/overlays/example", CheckLoginTLS, func(t *testing.T, o []*unstructured.Unstructured) {
			for _, v := range objects.Maps(objects.ListAt(manifeststest.PodSpecOf(t, o, "Deployment", "backend"), "volumes")) {
				if objects.StringAt(v, "name") == "kube-api-ca" {
					manifeststest.Set(t, v, "openshift-service-ca.crt", "configMap", "name")
				}
			}
		}, "is not the ca.crt of ConfigMap kube-root-ca.crt"},
		{"custom-ca bundle without the API CA", "gitops/overlays/example-with-options", CheckLoginTLS, func(t *testing.T, o []*unstructured.Unstructured) {
			for _, ic := range objects.Maps(objects.ListAt(manifeststest.PodSpecOf(t, o, "Deployment", "backend"), "initContainers")) {
				if objects.StringAt(ic, "name") == "join-ca-bundles" {
					ic["command"] = []any{"/bin/sh", "-c", "cat /etc/litemaas/trusted-ca/ca-bundle.crt > /etc/litemaas/ca/ca-bundle.crt"}
				}
			}
		}, "no init container fills from kube-root-ca.crt"},
		{"NODE_TLS_REJECT_UNAUTHORIZED on LiteLLM", "gitops/overlays/example", CheckTLSVerification, func(t *testing.T, o []*unstructured.Unstructured) {
			manifeststest.SetEnv(t, o, "Deployment", "litellm", "litellm", "NODE_TLS_REJECT_UNAUTHORIZED", "0")
		}, "env NODE_TLS_REJECT_UNAUTHORIZED is set"},
		{"K8S_API_SKIP_TLS_VERIFY on the backend", "gitops/overlays/example", CheckTLSVerification, func(t *testing.T, o []*unstructured.Unstructured) {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "K8S_API_SKIP_TLS_VERIFY", "true")
		}, "K8S_API_SKIP_TLS_VERIFY=true"},
		{"verification off in a command line", "gitops/overlays/example", CheckTLSVerification, func(t *testing.T, o []*unstructured.Unstructured) {
			ic := objects.Maps(objects.ListAt(manifeststest.PodSpecOf(t, o, "Deployment", "backend"), "initContainers"))[0]
			ic["command"] = []any{"/bin/sh", "-c", "NODE_TLS_REJECT_UNAUTHORIZED=0 node x.js"}
		}, "mentions NODE_TLS_REJECT_UNAUTHORIZED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Empty(t, tt.check(manifeststest.Rendered(t, tt.overlay)), "the unbroken overlay passes")
			objs := manifeststest.Rendered(t, tt.overlay)
			tt.breakIt(t, objs)
			assert.Contains(t, strings.Join(tt.check(objs), "\n"), tt.want)
		})
	}
}

func TestDatabaseRoles(t *testing.T) {
	for _, dir := range manifeststest.LiteMaaSOverlays(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			objs := manifeststest.Rendered(t, dir)
			if objects.Find(objs, "Cluster", "litemaas-db") != nil {
				// The production profile: the roles are CloudNativePG's managed roles (CheckCNPGCluster).
				assert.Empty(t, ha.CheckCNPGCluster(objs))
				return
			}
			manifeststest.Report(t, "database roles", CheckDatabaseRoles(objs))
		})
	}
	// And it can fail.
	objs := manifeststest.Rendered(t, "gitops/overlays/example-with-options")
	c := manifeststest.ContainerOf(t, objs, "StatefulSet", "postgres", "postgres")
	c["env"] = slices.DeleteFunc(objects.ListAt(c, "env"), func(e any) bool { return objects.StringAt(e.(map[string]any), "name") == "LITEMAAS_BACKUP_PASSWORD" })
	manifeststest.Set(t, manifeststest.MustFind(t, objs, "CronJob", "postgres-backup").Object, []any{map[string]any{"name": "backup", "env": []any{map[string]any{"name": "PGUSER", "value": "litemaas_admin"}}}},
		"spec", "jobTemplate", "spec", "template", "spec", "containers")
	ic := objects.Maps(objects.ListAt(manifeststest.PodSpecOf(t, objs, "Deployment", "litellm"), "initContainers"))[0]
	ic["command"] = []any{"/bin/sh", "-c", "until pg_isready -h postgres; do sleep 2; done"}
	got := strings.Join(CheckDatabaseRoles(objs), "\n")
	for _, want := range []string{"reads LITEMAAS_BACKUP_PASSWORD", "PGUSER \"litemaas_admin\"", "Deployment/litellm: init container"} {
		assert.Contains(t, got, want)
	}
}
