package ha

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// The defaults table of CheckCNPGRoleDefaults is exactly the CRD's: read from CloudNativePG's own
// Cluster CRD (the version upstream-crds.yaml pins), every defaulted field of managed.roles[].
func TestCNPGRoleDefaultsFromCRD(t *testing.T) {
	var crd *unstructured.Unstructured
	for _, o := range manifeststest.UpstreamCRDs(t) {
		if o.GetName() == "clusters.postgresql.cnpg.io" {
			crd = o
		}
	}
	require.NotNil(t, crd, "CloudNativePG's Cluster CRD")
	var item map[string]any
	for _, v := range objects.Maps(objects.ListAt(crd.Object, "spec", "versions")) {
		if objects.StringAt(v, "name") == "v1" {
			item = objects.MapAt(v, "schema", "openAPIV3Schema", "properties", "spec", "properties", "managed", "properties", "roles", "items")
		}
	}
	require.NotNil(t, item, "spec.managed.roles.items in the v1 schema")
	got := map[string]any{}
	for name, prop := range objects.MapAt(item, "properties") {
		if d, ok := prop.(map[string]any)["default"]; ok {
			got[name] = d
		}
	}
	assert.Equal(t, CNPGRoleDefaults, got)
}

// The policy rules of the OpenShift-facing fixes, each on the overlay that has the object, and each
// failing on a broken copy.
func TestOpenShiftChecksReject(t *testing.T) {
	tests := []struct {
		name    string
		overlay string
		check   func([]*unstructured.Unstructured) []string
		breakIt func(t *testing.T, o []*unstructured.Unstructured)
		want    string
	}{
		{"pull secret on a ServiceAccount", "gitops/overlays/example-with-options", CheckServiceAccountPullSecrets,
			func(t *testing.T, o []*unstructured.Unstructured) {
				manifeststest.Set(t, manifeststest.MustFind(t, o, "ServiceAccount", "litemaas-sync").Object, []any{map[string]any{"name": "litemaas-job-image-pull"}}, "imagePullSecrets")
			}, "ServiceAccount/litemaas-sync: imagePullSecrets on a ServiceAccount"},
		{"role without inherit", "gitops/overlays/example-ha", CheckCNPGRoleDefaults,
			func(t *testing.T, o []*unstructured.Unstructured) {
				roles := objects.ListAt(manifeststest.MustFind(t, o, "Cluster", HACluster).Object, "spec", "managed", "roles")
				delete(roles[2].(map[string]any), "inherit")
			}, "managed.roles[2] (litellm) omits inherit: the CRD defaults it to true"},
		{"role without connectionLimit", "gitops/overlays/example-ha", CheckCNPGRoleDefaults,
			func(t *testing.T, o []*unstructured.Unstructured) {
				roles := objects.ListAt(manifeststest.MustFind(t, o, "Cluster", HACluster).Object, "spec", "managed", "roles")
				delete(roles[0].(map[string]any), "connectionLimit")
			}, "omits connectionLimit: the CRD defaults it to -1"},
		{"sslmode=disable in a URL", "gitops/overlays/example-ha", CheckNoSSLDisable,
			func(t *testing.T, o []*unstructured.Unstructured) {
				manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "DATABASE_URL", "postgresql://u@litemaas-db-rw:5432/litemaas_db?sslmode=disable")
			}, "sslmode=disable in the production profile"},
		{"the backend reading all data", "gitops/overlays/example-ha", CheckHAProfile,
			func(t *testing.T, o []*unstructured.Unstructured) {
				roles := objects.ListAt(manifeststest.MustFind(t, o, "Cluster", HACluster).Object, "spec", "managed", "roles")
				roles[0].(map[string]any)["inRoles"] = []any{"pg_read_all_data"}
			}, "role litemaas_backend is in pg_read_all_data"},
		{"PGSSLMODE=prefer", "gitops/overlays/example-ha", CheckNoSSLDisable,
			func(t *testing.T, o []*unstructured.Unstructured) {
				manifeststest.SetEnv(t, o, "Deployment", "litellm", "litellm", "PGSSLMODE", "prefer")
			}, `PGSSLMODE="prefer"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Empty(t, tt.check(manifeststest.Rendered(t, tt.overlay)), "the unbroken overlay passes")
			objs := manifeststest.Rendered(t, tt.overlay)
			tt.breakIt(t, objs)
			assert.Contains(t, strings.Join(tt.check(objs), "\n"), tt.want)
		})
	}
}
